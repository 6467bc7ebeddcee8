/**
 * The column-major input of `ParquetWriter.writeColumns`, and the checks that keep a malformed batch out
 * of the file.
 *
 * The shape is @backhaul/core's `ColumnBatch`, declared here structurally so this package stays free of
 * dependencies: a core batch is assignable to a `ParquetColumnBatch` as it is.
 */

import { PhysicalType } from './format-constants.js';
import { countBits } from './growable-buffer.js';
import { type ColumnSpec, nullInRequired } from './schema.js';

/** Rows in column-major form: one vector per writer column, in the writer's column order. */
export interface ParquetColumnBatch {
  readonly rowCount: number;
  readonly vectors: readonly ParquetColumnVector[];
}

/**
 * One column of a batch. `data` holds the non-null values only, in row order, in Parquet's PLAIN layout
 * (little-endian; BYTE_ARRAY values as a uint32 length, then the bytes), except boolean: one byte per
 * value, 0 or 1. A decimal is its int64 unscaled value (value × 10^scale). `validity` bit i (LSB first) is
 * set when row i has a value; `undefined` means no NULL. `valueCount` is the number of non-null rows.
 */
export interface ParquetColumnVector {
  readonly data: Uint8Array;
  readonly valueCount: number;
  readonly validity: Uint8Array | undefined;
  /**
   * List columns only: the elements of the non-null rows, in order, as a vector of the element type
   * with one row per element (its validity marks NULL elements). `data` then holds a uint32 element
   * count per non-null row, so an empty list (count 0) and a NULL list (validity bit clear) differ.
   */
  readonly elements?: ParquetColumnVector;
}

/**
 * Bytes per value in a vector: the PLAIN width of the column's physical type, except BOOLEAN (a byte per
 * value, not a bit); undefined for BYTE_ARRAY, whose values are length-prefixed.
 */
export function vectorValueWidth(spec: ColumnSpec): number | undefined {
  switch (spec.physicalType) {
    case PhysicalType.BOOLEAN:
      return 1;
    case PhysicalType.INT32:
      return 4;
    case PhysicalType.INT64:
    case PhysicalType.DOUBLE:
      return 8;
    case PhysicalType.FIXED_LEN_BYTE_ARRAY:
      return spec.typeLength;
    default:
      return undefined; // BYTE_ARRAY: the writer produces no other physical type
  }
}

/**
 * Throws a TypeError (RangeError for a count or length that does not add up) naming the column, unless
 * every vector of the batch is well formed for its column: the batch comes from a database decoder, and
 * the writer copies its bytes without looking at each value again. `firstRow` (the writer's row count)
 * only locates the batch in the message.
 */
export function checkColumnBatch(
  specs: readonly ColumnSpec[],
  batch: ParquetColumnBatch,
  firstRow: number,
): void {
  const where = `Parquet column batch at row ${firstRow}`;
  if (typeof batch !== 'object' || batch === null) throw new TypeError(`${where}: expected an object`);
  const { rowCount, vectors } = batch;
  if (!Number.isSafeInteger(rowCount) || rowCount < 0) {
    throw new RangeError(`${where}: rowCount must be a non-negative integer, got ${String(rowCount)}`);
  }
  if (!Array.isArray(vectors) || vectors.length !== specs.length) {
    const got = Array.isArray(vectors) ? vectors.length : typeof vectors;
    throw new TypeError(`${where}: expected ${specs.length} column vectors, got ${got}`);
  }
  specs.forEach((spec, column) => {
    try {
      checkVector(spec, vectors[column], rowCount);
    } catch (error) {
      const message = `Parquet column "${spec.name}" (${spec.type}), batch at row ${firstRow}: ${(error as Error).message}`;
      throw error instanceof RangeError
        ? new RangeError(message, { cause: error })
        : new TypeError(message, { cause: error });
    }
  });
}

function checkVector(spec: ColumnSpec, vector: ParquetColumnVector | undefined, rowCount: number): void {
  if (typeof vector !== 'object' || vector === null) throw new TypeError('expected a column vector');
  const { data, valueCount, validity } = vector;
  if (!(data instanceof Uint8Array)) throw new TypeError('vector data must be a Uint8Array');
  let present = rowCount;
  if (validity !== undefined) {
    if (!(validity instanceof Uint8Array)) throw new TypeError('validity must be a Uint8Array or undefined');
    const needed = (rowCount + 7) >>> 3;
    if (validity.length < needed) {
      throw new RangeError(`validity has ${validity.length} bytes, ${rowCount} rows need ${needed}`);
    }
    present = countBits(validity, rowCount);
  }
  if (present < rowCount && !spec.nullable) throw nullInRequired();
  if (valueCount !== present) {
    throw new RangeError(
      `valueCount is ${String(valueCount)} but ${present} of the ${rowCount} rows are non-null`,
    );
  }
  if (spec.element) {
    checkListVector(spec.element, vector);
    return;
  }
  const width = vectorValueWidth(spec);
  if (width === undefined) {
    checkByteArrays(data, valueCount);
    return;
  }
  if (data.length !== valueCount * width) {
    throw new RangeError(
      `data has ${data.length} bytes, ${valueCount} values of ${width} bytes need ${valueCount * width}`,
    );
  }
  if (spec.type === 'boolean') {
    for (let k = 0; k < valueCount; k++) {
      if (data[k]! > 1) throw new TypeError(`boolean value ${k} is the byte ${data[k]}, expected 0 or 1`);
    }
  }
  if (spec.type === 'decimal') {
    if (spec.physicalType === PhysicalType.FIXED_LEN_BYTE_ARRAY) {
      checkWideDecimalPrecision(data, valueCount, spec.typeLength, spec.precision);
    } else {
      checkDecimalPrecision(data, valueCount, spec.precision);
    }
  }
}

/** A list vector: a uint32 count per non-null row, and an element vector with that many rows in all. */
function checkListVector(element: ColumnSpec, vector: ParquetColumnVector): void {
  const { data, valueCount, elements } = vector;
  if (data.length !== valueCount * 4) {
    throw new RangeError(`data has ${data.length} bytes, ${valueCount} list lengths need ${valueCount * 4}`);
  }
  if (typeof elements !== 'object' || elements === null) {
    throw new TypeError('a list vector needs its elements vector');
  }
  const counts = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let total = 0;
  for (let k = 0; k < valueCount; k++) total += counts.getUint32(4 * k, true);
  try {
    checkVector(element, elements, total);
  } catch (error) {
    const message = `elements: ${(error as Error).message}`;
    throw error instanceof RangeError ? new RangeError(message) : new TypeError(message);
  }
}

/**
 * Unscaled decimals must fit the column's precision, as `write()` checks per value: a DECIMAL(p, s)
 * file with a wider value is out of spec. Compared as doubles, exact enough except within one part
 * in 2^52 of the bound, where BigInt decides.
 */
function checkDecimalPrecision(data: Uint8Array, valueCount: number, precision: number): void {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const bound = 10 ** precision;
  const exactBound = 10n ** BigInt(precision);
  for (let k = 0; k < valueCount; k++) {
    const at = k * 8;
    const magnitude = Math.abs(view.getInt32(at + 4, true) * 4294967296 + view.getUint32(at, true));
    if (magnitude < bound * (1 - 2 ** -50)) continue;
    const value = view.getBigInt64(at, true);
    if ((value < 0n ? -value : value) >= exactBound) {
      throw new RangeError(`decimal value ${k} (unscaled ${value}) has more than ${precision} digits`);
    }
  }
}

/** FIXED_LEN_BYTE_ARRAY decimals (big-endian two's complement) must fit their precision too. */
function checkWideDecimalPrecision(
  data: Uint8Array,
  valueCount: number,
  width: number,
  precision: number,
): void {
  const bound = 10n ** BigInt(precision);
  for (let k = 0; k < valueCount; k++) {
    const value = BigInt.asIntN(
      8 * width,
      BigInt(`0x${Buffer.from(data.subarray(k * width, (k + 1) * width)).toString('hex')}`),
    );
    if ((value < 0n ? -value : value) >= bound) {
      throw new RangeError(`decimal value ${k} (unscaled ${value}) has more than ${precision} digits`);
    }
  }
}

/** Walks the uint32 length prefixes: exactly `valueCount` values must end exactly at the end of `data`. */
function checkByteArrays(data: Uint8Array, valueCount: number): void {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  for (let k = 0; k < valueCount; k++) {
    if (offset + 4 > data.length) {
      throw new RangeError(`data ends after ${k} of ${valueCount} values (${data.length} bytes)`);
    }
    const length = view.getUint32(offset, true);
    offset += 4 + length;
    if (offset > data.length) {
      throw new RangeError(`value ${k} (${length} bytes) runs past the end of data (${data.length} bytes)`);
    }
  }
  if (offset !== data.length) {
    throw new RangeError(`data has ${data.length - offset} bytes after its ${valueCount} values`);
  }
}
