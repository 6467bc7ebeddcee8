import type { RowValue } from './data-source.js';
import type { Column, ListElement } from './protocol.js';
import { microsToTimestampText } from './timestamp-text.js';

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
 * | list | uint32 element count; the elements are in `elements` |
 *
 * `validity` bit i (LSB first within each byte) is set when row i has a value; `undefined` means the
 * batch has no NULL in this column. `valueCount` is the number of non-null rows.
 */
export interface ColumnVector {
  readonly data: Uint8Array;
  readonly valueCount: number;
  readonly validity: Uint8Array | undefined;
  /**
   * List columns only: the elements of the non-null rows, in row order, as a vector of the element
   * type with one row per element (its validity marks NULL elements). An empty list has count 0,
   * a NULL list no count at all.
   */
  readonly elements?: ColumnVector;
}

/** A list's element type as a column of its own, named after the list (for messages). */
export function listElementColumn(column: Column): Column {
  const element: ListElement | undefined = column.element;
  if (column.type !== 'list' || !element) {
    throw new TypeError(`Column "${column.name}" is not a list with an element type`);
  }
  return { name: column.name, nullable: true, ...element };
}

const MS_PER_DAY = 86_400_000;
const utf8 = new TextDecoder();

/**
 * The batch as rows of plain JS values, as `QueryCursor.batches` gives them: what a columnar cursor
 * hands to rows mode. Timestamps become their exact ISO text with microseconds, dates become Dates
 * and decimals their exact text, as sources give them in rows.
 */
export function columnBatchToRows(columns: readonly Column[], batch: ColumnBatch): RowValue[][] {
  const rows: RowValue[][] = Array.from(
    { length: batch.rowCount },
    () => new Array<RowValue>(columns.length),
  );
  columns.forEach((column, c) => {
    const vector = batch.vectors[c];
    if (!vector) throw new TypeError(`The batch has no vector for column "${column.name}"`);
    const { validity } = vector;
    const read = valueReader(column, vector);
    let at = 0;
    for (let r = 0; r < batch.rowCount; r++) {
      if (validity && (validity[r >>> 3]! & (1 << (r & 7))) === 0) {
        rows[r]![c] = null;
        continue;
      }
      const [value, next] = read(at);
      rows[r]![c] = value;
      at = next;
    }
  });
  return rows;
}

/** Reads the value at byte `at` of a vector; returns it and where the next one starts. */
type ValueReader = (at: number) => [RowValue, number];

function valueReader(column: Column, vector: ColumnVector): ValueReader {
  const { data } = vector;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (column.type) {
    case 'boolean':
      return (at) => [data[at] !== 0, at + 1];
    case 'int32':
      return (at) => [view.getInt32(at, true), at + 4];
    case 'date':
      return (at) => [new Date(view.getInt32(at, true) * MS_PER_DAY), at + 4];
    case 'float64':
      return (at) => [view.getFloat64(at, true), at + 8];
    case 'int64':
      return (at) => [safeNumber(view.getBigInt64(at, true)), at + 8];
    case 'timestamp':
      return (at) => [microsToTimestampText(view.getBigInt64(at, true)), at + 8];
    case 'decimal':
      if ((column.precision ?? 18) <= 18) {
        const scale = column.scale ?? 0;
        return (at) => [decimalText(view.getBigInt64(at, true), scale), at + 8];
      }
      return textReader(data, view);
    case 'binary':
      return (at) => {
        const length = view.getUint32(at, true);
        // A copy: the vector's bytes may be a view of a buffer the source reuses.
        return [Uint8Array.prototype.slice.call(data, at + 4, at + 4 + length), at + 4 + length];
      };
    case 'list':
      return listReader(column, vector, view);
    default:
      return textReader(data, view);
  }
}

/** A list's count, then that many elements read on from the elements vector: a JS array. */
function listReader(column: Column, vector: ColumnVector, view: DataView): ValueReader {
  const elements = vector.elements;
  if (!elements) throw new TypeError(`The list column "${column.name}" has no elements vector`);
  const readElement = valueReader(listElementColumn(column), elements);
  const validity = elements.validity;
  let element = 0;
  let elementAt = 0;
  return (at) => {
    const count = view.getUint32(at, true);
    const list = new Array<RowValue>(count);
    for (let k = 0; k < count; k++, element++) {
      if (validity && (validity[element >>> 3]! & (1 << (element & 7))) === 0) {
        list[k] = null;
      } else {
        [list[k], elementAt] = readElement(elementAt) as [RowValue, number];
      }
    }
    return [list, at + 4];
  };
}

function textReader(data: Uint8Array, view: DataView): ValueReader {
  return (at) => {
    const length = view.getUint32(at, true);
    return [utf8.decode(data.subarray(at + 4, at + 4 + length)), at + 4 + length];
  };
}

function safeNumber(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

/** An unscaled integer at `scale` as decimal text: 1250n at scale 2 is '12.50'. */
export function decimalText(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}
