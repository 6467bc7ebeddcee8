import type { Column } from './protocol.js';

/**
 * Rows in column-major form, for sources that decode straight into columns: file mode then writes
 * Parquet without a JS value per cell. Every vector holds the same `rowCount` rows, in the order of
 * the cursor's `columns`.
 */
export interface ColumnBatch {
  readonly rowCount: number;
  readonly vectors: readonly ColumnVector[];
}

/**
 * One column of a batch. `data` holds the non-null values only, in row order, little-endian, laid out
 * by the column's type (which is Parquet's PLAIN encoding for all but boolean):
 *
 * | column type | each value in `data` |
 * |---|---|
 * | boolean | 1 byte, 0 or 1 |
 * | int32 | int32 |
 * | date | int32 days since 1970-01-01 |
 * | int64 | int64 |
 * | timestamp | int64 microseconds since 1970-01-01T00:00:00Z |
 * | decimal, precision ≤ 18 | int64 unscaled value (value × 10^scale) |
 * | float64 | float64 |
 * | string, json, decimal with precision > 18 (its text) | uint32 byte length, then UTF-8 |
 * | binary | uint32 byte length, then the bytes |
 *
 * `validity` bit i (LSB first within each byte) is set when row i has a value; `undefined` means the
 * batch has no NULL in this column. `valueCount` is the number of non-null rows.
 */
export interface ColumnVector {
  readonly data: Uint8Array;
  readonly valueCount: number;
  readonly validity: Uint8Array | undefined;
}

/** Bytes per value of a fixed-width column type in a `ColumnVector`; undefined for length-prefixed ones. */
export function fixedValueWidth(column: Pick<Column, 'type' | 'precision'>): 1 | 4 | 8 | undefined {
  switch (column.type) {
    case 'boolean':
      return 1;
    case 'int32':
    case 'date':
      return 4;
    case 'int64':
    case 'timestamp':
    case 'float64':
      return 8;
    case 'decimal':
      return (column.precision ?? 18) <= 18 ? 8 : undefined;
    default:
      return undefined;
  }
}
