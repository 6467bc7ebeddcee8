/**
 * Test helpers: JS rows encoded into the column-batch layout, the way a database decoder would produce it,
 * written independently of the writer's own conversions so the two input paths check each other.
 */
import type { ParquetColumn, ParquetColumnBatch, ParquetColumnVector } from '../src/index.js';

export interface ColumnBatchOptions {
  /** 'always' gives every vector a validity bitmap, even one with no NULL (default: only when needed). */
  validity?: 'when-null' | 'always';
}

const utf8 = new TextEncoder();
const DAY_MS = 86_400_000;

/**
 * `rows` (arrays aligned with `columns`, null/undefined = NULL) as a batch. Each vector's data sits at an
 * odd byte offset of a larger buffer, and the padding bits of its last validity byte are set: a decoder's
 * slices promise neither alignment nor clean padding.
 */
export function rowsToColumnBatch(
  columns: readonly ParquetColumn[],
  rows: readonly (readonly unknown[])[],
  options: ColumnBatchOptions = {},
): ParquetColumnBatch {
  return {
    rowCount: rows.length,
    vectors: columns.map((column, c) =>
      toVector(
        column,
        rows.map((row) => row[c]),
        options,
      ),
    ),
  };
}

function toVector(
  column: ParquetColumn,
  values: unknown[],
  options: ColumnBatchOptions,
): ParquetColumnVector {
  const present = values.filter((v) => v !== null && v !== undefined);
  const encoded = present.map((v) => encodeValue(column, v));
  const size = encoded.reduce((sum, bytes) => sum + bytes.length, 0);
  const data = new Uint8Array(size + 3).subarray(1, size + 1);
  let offset = 0;
  for (const bytes of encoded) {
    data.set(bytes, offset);
    offset += bytes.length;
  }
  let validity: Uint8Array | undefined;
  if (present.length < values.length || options.validity === 'always') {
    validity = new Uint8Array((values.length + 7) >>> 3);
    values.forEach((v, i) => {
      if (v !== null && v !== undefined) validity![i >>> 3]! |= 1 << (i & 7);
    });
    if (values.length & 7) validity[validity.length - 1]! |= 0xff << (values.length & 7);
  }
  return { data, valueCount: present.length, validity };
}

function encodeValue(column: ParquetColumn, v: unknown): Uint8Array {
  switch (column.type) {
    case 'boolean':
      return Uint8Array.of(v ? 1 : 0);
    case 'int32':
      return fixed(4, (view) => view.setInt32(0, v as number, true));
    case 'date':
      return fixed(4, (view) =>
        view.setInt32(0, v instanceof Date ? v.getTime() / DAY_MS : (v as number), true),
      );
    case 'int64':
      return fixed(8, (view) => view.setBigInt64(0, BigInt(v as number | bigint), true));
    case 'timestamp':
      return fixed(8, (view) => view.setBigInt64(0, BigInt((v as Date).getTime()) * 1000n, true));
    case 'decimal':
      return fixed(8, (view) => view.setBigInt64(0, unscaled(v as string, column.scale ?? 2), true));
    case 'float64':
      return fixed(8, (view) => view.setFloat64(0, v as number, true));
    case 'string':
      return lengthPrefixed(utf8.encode(v as string));
    case 'json':
      return lengthPrefixed(utf8.encode(typeof v === 'string' ? v : JSON.stringify(v)));
    case 'binary':
      return lengthPrefixed(v as Uint8Array);
    case 'list':
      throw new TypeError('list vectors are built by the list tests themselves');
  }
}

function fixed(width: number, write: (view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(width);
  write(new DataView(bytes.buffer));
  return bytes;
}

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length, true);
  out.set(bytes, 4);
  return out;
}

/** '-12.5' at scale 3 -> -12500n; the test data never has more fraction digits than the scale. */
function unscaled(text: string, scale: number): bigint {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  const fraction = match?.[3] ?? '';
  if (!match || fraction.length > scale) throw new Error(`test helper cannot encode decimal ${text}`);
  const magnitude = BigInt(`${match[2] || '0'}${fraction.padEnd(scale, '0')}`);
  return match[1] === '-' ? -magnitude : magnitude;
}

/** Index of the first byte where two files differ, -1 when they are identical. */
export function firstDifference(a: ArrayBuffer, b: ArrayBuffer): number {
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  const length = Math.min(x.length, y.length);
  for (let i = 0; i < length; i++) if (x[i] !== y[i]) return i;
  return x.length === y.length ? -1 : length;
}
