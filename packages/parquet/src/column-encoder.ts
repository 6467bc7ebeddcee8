/**
 * Per-column buffering of one row group, PLAIN-encoded as rows arrive.
 *
 * Rows are transposed column by column: each encoder runs one tight, type-specialised loop over a slice
 * of rows and writes straight into a reused byte buffer, so there is no per-value allocation and the
 * column's bytes are already in their on-disk PLAIN layout when the row group is flushed.
 *
 * Definition levels are kept as a bitmap (1 = value present), which is exactly the payload of a
 * bit-packed run with bit width 1, the only width a flat nullable column needs.
 *
 * Column batches skip the transposition: their values are already PLAIN bytes, so `appendVector` copies
 * them in bulk and merges the validity bitmap into the definition bitmap.
 */
import { type ParquetColumnVector, vectorValueWidth } from './column-batch.js';
import { decimalToUnscaled, describeValue } from './decimal.js';
import {
  appendBits,
  clearBits,
  copyBits,
  GrowableBuffer,
  growBits,
  SetBitCursor,
  setBits,
} from './growable-buffer.js';
import { type ColumnSpec, nullInRequired } from './schema.js';
import { dateToDays, timestampToMicros } from './temporal.js';

export type Rows = readonly (readonly unknown[])[];

/** One data page: a run of rows and the PLAIN bytes of their non-null values. */
export interface PageSlice {
  readonly rowStart: number;
  readonly rowCount: number;
  readonly valueStart: number;
  readonly valueCount: number;
  readonly byteStart: number;
  readonly byteEnd: number;
}

/** Thrown out of `append` so the writer knows which row failed; `error` carries the reason. */
export class RowFailure {
  constructor(
    readonly index: number,
    readonly error: unknown,
  ) {}
}

export abstract class ColumnEncoder {
  /** Rows of the current row group buffered in this column. */
  rowCount = 0;
  /** Non-null values among them. */
  valueCount = 0;
  protected defBits: Uint8Array = new Uint8Array(8192);
  protected readonly values = new GrowableBuffer();
  /** Page boundaries inside the current chunk, as flat (rowEnd, valueEnd, byteEnd) triples. */
  protected cuts: number[] = [];
  protected pageStartByte = 0;
  private saved = [0, 0, 0, 0, 0];

  constructor(
    readonly spec: ColumnSpec,
    protected readonly pageSizeLimit: number,
  ) {}

  /** Appends `rows[start..end)[col]`; throws RowFailure for the first value it cannot encode. */
  abstract append(rows: Rows, col: number, start: number, end: number): void;

  /**
   * Appends a column batch's vector of `rowCount` rows, already checked by `checkColumnBatch`. Pages are
   * cut exactly where `append` would cut them for the same values, so rows and batches give the same file.
   */
  appendVector(vector: ParquetColumnVector, rowCount: number): void {
    const def = this.reserveRows(rowCount);
    if (vector.validity === undefined) setBits(def, this.rowCount, this.rowCount + rowCount);
    else appendBits(vector.validity, rowCount, def, this.rowCount);
    this.appendVectorValues(vector.data, vector.valueCount, new SetBitCursor(vector.validity));
    this.rowCount += rowCount;
    this.valueCount += vector.valueCount;
  }

  /**
   * Takes a vector's `count` values and cuts their pages; `valueRows` maps a value of the vector to its
   * row in the vector. Fixed-width values are PLAIN already, so this copies them as they are.
   */
  protected appendVectorValues(data: Uint8Array, count: number, valueRows: SetBitCursor): void {
    const width = vectorValueWidth(this.spec)!;
    this.cutFixedWidthPages(this.values.length, width, this.pageSizeLimit, count, valueRows);
    this.appendPlainBytes(data);
  }

  protected appendPlainBytes(data: Uint8Array): void {
    const buf = this.values;
    buf.reserve(data.length);
    buf.bytes.set(data, buf.length);
    buf.length += data.length;
  }

  /**
   * Cuts the pages `append` would cut among `count` new values of `width` units each, the first at unit
   * `start`, without testing every value: `append` cuts before the first value at least `limit` units past
   * the page start, so the cuts fall `ceil(limit / width)` values apart.
   */
  protected cutFixedWidthPages(
    start: number,
    width: number,
    limit: number,
    count: number,
    valueRows: SetBitCursor,
  ): void {
    const step = Math.ceil(limit / width);
    let k = Math.max(0, Math.ceil((this.pageStartByte + limit - start) / width));
    for (; k < count; k += step) {
      this.cutPage(this.rowCount + valueRows.indexOf(k), this.valueCount + k, start + k * width);
    }
  }

  /** Size of the PLAIN-encoded values of the chunk so far (for row-group byte budgeting). */
  get bufferedBytes(): number {
    return this.values.length + (this.rowCount >>> 3);
  }

  /** Bytes of the page's PLAIN-encoded values. */
  pageValueBytes(page: PageSlice): number {
    return page.byteEnd - page.byteStart;
  }

  /** Copies the page's PLAIN-encoded values to `out[offset..]`; returns the bytes written. */
  writePageValues(page: PageSlice, out: Uint8Array, offset: number): number {
    out.set(this.values.bytes.subarray(page.byteStart, page.byteEnd), offset);
    return page.byteEnd - page.byteStart;
  }

  /** The chunk's PLAIN-encoded values (all types but BOOLEAN, whose values are a bitmap). */
  get plainBytes(): Buffer {
    return this.values.bytes;
  }

  /** The definition-level bitmap of the current chunk (bit i = row i is non-null). */
  get definitionBits(): Uint8Array {
    return this.defBits;
  }

  pages(): PageSlice[] {
    return slicePages(this.cuts, this.rowCount, this.valueCount, this.values.length);
  }

  /** Forgets the flushed row group but keeps the buffers for the next one. */
  reset(): void {
    this.defBits.fill(0, 0, (this.rowCount + 7) >>> 3);
    this.rowCount = 0;
    this.valueCount = 0;
    this.values.length = 0;
    this.cuts = [];
    this.pageStartByte = 0;
  }

  snapshot(): void {
    this.saved = [this.rowCount, this.valueCount, this.values.length, this.cuts.length, this.pageStartByte];
  }

  /** Undoes a failed `append` of up to `sliceRows` rows since `snapshot()`. */
  rollback(sliceRows: number): void {
    const [rowCount, valueCount, byteLength, cutsLength, pageStartByte] = this.saved as [
      number,
      number,
      number,
      number,
      number,
    ];
    clearBits(this.defBits, rowCount, rowCount + sliceRows);
    this.rollbackValues(valueCount, this.valueCount + sliceRows);
    this.rowCount = rowCount;
    this.valueCount = valueCount;
    this.values.length = byteLength;
    this.cuts.length = cutsLength;
    this.pageStartByte = pageStartByte;
  }

  protected rollbackValues(_from: number, _to: number): void {}

  /** Makes room for `count` more rows in the definition bitmap. */
  protected reserveRows(count: number): Uint8Array {
    this.defBits = growBits(this.defBits, this.rowCount + count);
    return this.defBits;
  }

  /** Ends the current page before row `row`, so no page's values grow far past the limit. */
  protected cutPage(row: number, valueCount: number, byteEnd: number): void {
    this.cuts.push(row, valueCount, byteEnd);
    this.pageStartByte = byteEnd;
  }
}

/** BOOLEAN: PLAIN is a bit-packed bitmap of the non-null values, LSB first. */
class BooleanEncoder extends ColumnEncoder {
  private valueBits: Uint8Array = new Uint8Array(8192);
  /** Page size is measured in values here: 8 values per byte. */
  private readonly pageValueLimit = this.pageSizeLimit * 8;

  override get bufferedBytes(): number {
    return (this.valueCount >>> 3) + (this.rowCount >>> 3);
  }

  append(rows: Rows, col: number, start: number, end: number): void {
    const def = this.reserveRows(end - start);
    this.valueBits = growBits(this.valueBits, this.valueCount + (end - start));
    const bits = this.valueBits;
    const nullable = this.spec.nullable;
    const pageValueLimit = this.pageValueLimit;
    let r = this.rowCount;
    let count = this.valueCount;
    let i = start;
    try {
      for (; i < end; i++, r++) {
        const v = rows[i]![col];
        if (v === null || v === undefined) {
          if (!nullable) throw nullInRequired();
          continue;
        }
        let bit: number;
        if (v === true || v === 1) bit = 1;
        else if (v === false || v === 0) bit = 0;
        else throw new TypeError(`expected a boolean (or 0/1), got ${describeValue(v)}`);
        // The byte slots of a boolean page cut hold value indexes; pages are sliced by valueStart/valueCount.
        if (count - this.pageStartByte >= pageValueLimit) this.cutPage(r, count, count);
        if (bit) bits[count >>> 3]! |= 1 << (count & 7);
        count++;
        def[r >>> 3]! |= 1 << (r & 7);
      }
    } catch (error) {
      throw new RowFailure(i, error);
    }
    this.rowCount = r;
    this.valueCount = count;
  }

  /** Packs the vector's one-byte booleans into the value bitmap. */
  protected override appendVectorValues(data: Uint8Array, count: number, valueRows: SetBitCursor): void {
    this.cutFixedWidthPages(this.valueCount, 1, this.pageValueLimit, count, valueRows);
    const bits = growBits(this.valueBits, this.valueCount + count);
    this.valueBits = bits;
    for (let k = 0, v = this.valueCount; k < count; k++, v++) {
      if (data[k] === 1) bits[v >>> 3]! |= 1 << (v & 7);
    }
  }

  override pageValueBytes(page: PageSlice): number {
    return (page.valueCount + 7) >>> 3;
  }

  override writePageValues(page: PageSlice, out: Uint8Array, offset: number): number {
    return copyBits(this.valueBits, page.valueStart, page.valueCount, out, offset);
  }

  override reset(): void {
    this.valueBits.fill(0, 0, (this.valueCount + 7) >>> 3);
    super.reset();
  }

  protected override rollbackValues(from: number, to: number): void {
    clearBits(this.valueBits, from, to);
  }
}

/** INT32 (int32, date). */
class Int32Encoder extends ColumnEncoder {
  private readonly isDate = this.spec.type === 'date';

  append(rows: Rows, col: number, start: number, end: number): void {
    const def = this.reserveRows(end - start);
    const buf = this.values;
    buf.reserve((end - start) * 4);
    const view = buf.view;
    const nullable = this.spec.nullable;
    const isDate = this.isDate;
    const limit = this.pageSizeLimit;
    let pos = buf.length;
    let r = this.rowCount;
    let count = this.valueCount;
    let i = start;
    try {
      for (; i < end; i++, r++) {
        const v = rows[i]![col];
        if (v === null || v === undefined) {
          if (!nullable) throw nullInRequired();
          continue;
        }
        let n: number;
        if (isDate) n = dateToDays(v);
        else if (typeof v === 'number' && (v | 0) === v) n = v;
        else throw new TypeError(`expected a 32-bit integer, got ${describeValue(v)}`);
        if (pos - this.pageStartByte >= limit) this.cutPage(r, count, pos);
        view.setInt32(pos, n, true);
        pos += 4;
        count++;
        def[r >>> 3]! |= 1 << (r & 7);
      }
    } catch (error) {
      throw new RowFailure(i, error);
    }
    buf.length = pos;
    this.rowCount = r;
    this.valueCount = count;
  }
}

const TWO_POW_32 = 4294967296;
const TWO_POW_63 = 2 ** 63;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INTEGER_STRING = /^[+-]?\d+$/;

function toInt64(v: unknown): number | bigint {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -TWO_POW_63 && v < TWO_POW_63) return v;
    throw new TypeError(`expected a 64-bit integer, got ${describeValue(v)}`);
  }
  // bigint, and the decimal strings SQL drivers (e.g. pg) use for BIGINT so no precision is lost.
  const big =
    typeof v === 'bigint' ? v : typeof v === 'string' && INTEGER_STRING.test(v) ? BigInt(v) : undefined;
  if (big === undefined) throw new TypeError(`expected a 64-bit integer, got ${describeValue(v)}`);
  if (big < INT64_MIN || big > INT64_MAX)
    throw new RangeError(`${big} does not fit in a signed 64-bit integer`);
  return big;
}

const KIND_INT64 = 0;
const KIND_TIMESTAMP = 1;
const KIND_DECIMAL = 2;

/** INT64 (int64, timestamp micros, decimal unscaled). */
class Int64Encoder extends ColumnEncoder {
  private readonly kind =
    this.spec.type === 'timestamp'
      ? KIND_TIMESTAMP
      : this.spec.type === 'decimal'
        ? KIND_DECIMAL
        : KIND_INT64;

  append(rows: Rows, col: number, start: number, end: number): void {
    const def = this.reserveRows(end - start);
    const buf = this.values;
    buf.reserve((end - start) * 8);
    const view = buf.view;
    const { nullable, precision, scale } = this.spec;
    const kind = this.kind;
    const limit = this.pageSizeLimit;
    let pos = buf.length;
    let r = this.rowCount;
    let count = this.valueCount;
    let i = start;
    try {
      for (; i < end; i++, r++) {
        const v = rows[i]![col];
        if (v === null || v === undefined) {
          if (!nullable) throw nullInRequired();
          continue;
        }
        const n =
          kind === KIND_TIMESTAMP
            ? timestampToMicros(v)
            : kind === KIND_DECIMAL
              ? decimalToUnscaled(v, precision, scale)
              : toInt64(v);
        if (pos - this.pageStartByte >= limit) this.cutPage(r, count, pos);
        if (typeof n === 'number') {
          // Two 32-bit halves instead of setBigInt64 avoid allocating a BigInt per value.
          if ((n | 0) === n) {
            view.setInt32(pos, n, true);
            view.setInt32(pos + 4, n >> 31, true);
          } else {
            const hi = Math.floor(n / TWO_POW_32);
            view.setUint32(pos, n - hi * TWO_POW_32, true);
            view.setInt32(pos + 4, hi, true);
          }
        } else {
          view.setBigInt64(pos, n, true);
        }
        pos += 8;
        count++;
        def[r >>> 3]! |= 1 << (r & 7);
      }
    } catch (error) {
      throw new RowFailure(i, error);
    }
    buf.length = pos;
    this.rowCount = r;
    this.valueCount = count;
  }
}

/** DOUBLE (float64). */
class DoubleEncoder extends ColumnEncoder {
  append(rows: Rows, col: number, start: number, end: number): void {
    const def = this.reserveRows(end - start);
    const buf = this.values;
    buf.reserve((end - start) * 8);
    const view = buf.view;
    const nullable = this.spec.nullable;
    const limit = this.pageSizeLimit;
    let pos = buf.length;
    let r = this.rowCount;
    let count = this.valueCount;
    let i = start;
    try {
      for (; i < end; i++, r++) {
        const v = rows[i]![col];
        if (v === null || v === undefined) {
          if (!nullable) throw nullInRequired();
          continue;
        }
        if (typeof v !== 'number') throw new TypeError(`expected a number, got ${describeValue(v)}`);
        if (pos - this.pageStartByte >= limit) this.cutPage(r, count, pos);
        view.setFloat64(pos, v, true);
        pos += 8;
        count++;
        def[r >>> 3]! |= 1 << (r & 7);
      }
    } catch (error) {
      throw new RowFailure(i, error);
    }
    buf.length = pos;
    this.rowCount = r;
    this.valueCount = count;
  }
}

/**
 * FIXED_LEN_BYTE_ARRAY decimals (precision 19–38): the unscaled value as big-endian two's complement in
 * the column's byte width. Safe integers are written without a BigInt. Its loop has the shape of the
 * other encoders' on purpose: each type gets its own monomorphic loop (see the top of this file).
 */
class WideDecimalEncoder extends ColumnEncoder {
  private readonly width = this.spec.typeLength;

  append(rows: Rows, col: number, start: number, end: number): void {
    const def = this.reserveRows(end - start);
    const buf = this.values;
    const width = this.width;
    buf.reserve((end - start) * width);
    const bytes = buf.bytes;
    const view = buf.view;
    const { nullable, precision, scale } = this.spec;
    const limit = this.pageSizeLimit;
    let pos = buf.length;
    let r = this.rowCount;
    let count = this.valueCount;
    let i = start;
    try {
      for (; i < end; i++, r++) {
        const v = rows[i]![col];
        if (v === null || v === undefined) {
          if (!nullable) throw nullInRequired();
          continue;
        }
        const n = decimalToUnscaled(v, precision, scale);
        if (pos - this.pageStartByte >= limit) this.cutPage(r, count, pos);
        if (typeof n === 'number') {
          bytes.fill(n < 0 ? 0xff : 0, pos, pos + width - 8);
          const hi = Math.floor(n / TWO_POW_32);
          view.setInt32(pos + width - 8, hi, false);
          view.setUint32(pos + width - 4, n - hi * TWO_POW_32, false);
        } else {
          let rest = n;
          for (let b = width - 1; b >= 0; b--) {
            bytes[pos + b] = Number(rest & 0xffn);
            rest >>= 8n;
          }
        }
        pos += width;
        count++;
        def[r >>> 3]! |= 1 << (r & 7);
      }
    } catch (error) {
      throw new RowFailure(i, error);
    }
    buf.length = pos;
    this.rowCount = r;
    this.valueCount = count;
  }
}

const KIND_STRING = 0;
const KIND_JSON = 1;
const KIND_BINARY = 2;
/** Past this many UTF-16 units, measuring exactly is cheaper than reserving the 3-bytes-per-unit worst case. */
const EXACT_MEASURE_CHARS = 1 << 16;

/** BYTE_ARRAY (string, json, binary): PLAIN is a 4-byte little-endian length, then the bytes. */
class ByteArrayEncoder extends ColumnEncoder {
  private readonly kind =
    this.spec.type === 'json' ? KIND_JSON : this.spec.type === 'binary' ? KIND_BINARY : KIND_STRING;

  append(rows: Rows, col: number, start: number, end: number): void {
    const def = this.reserveRows(end - start);
    const buf = this.values;
    const nullable = this.spec.nullable;
    const kind = this.kind;
    const limit = this.pageSizeLimit;
    let bytes = buf.bytes;
    let view = buf.view;
    let capacity = bytes.length;
    let pos = buf.length;
    let r = this.rowCount;
    let count = this.valueCount;
    let i = start;
    try {
      for (; i < end; i++, r++) {
        const v = rows[i]![col];
        if (v === null || v === undefined) {
          if (!nullable) throw nullInRequired();
          continue;
        }
        if (pos - this.pageStartByte >= limit) this.cutPage(r, count, pos);
        let binary: Uint8Array | undefined;
        let text: string | undefined;
        if (kind === KIND_BINARY) {
          binary = toBinary(v);
        } else if (typeof v === 'string') {
          text = v;
        } else if (kind === KIND_JSON) {
          text = toJsonText(v);
        } else {
          throw new TypeError(`expected a string, got ${describeValue(v)}`);
        }
        const maxBytes =
          binary !== undefined
            ? binary.length
            : text!.length > EXACT_MEASURE_CHARS
              ? Buffer.byteLength(text!, 'utf8')
              : text!.length * 3;
        if (pos + 4 + maxBytes > capacity) {
          buf.length = pos;
          buf.reserve(4 + maxBytes);
          bytes = buf.bytes;
          view = buf.view;
          capacity = bytes.length;
        }
        let written: number;
        if (binary !== undefined) {
          bytes.set(binary, pos + 4);
          written = binary.length;
        } else {
          written = writeUtf8(bytes, pos + 4, text!);
        }
        view.setUint32(pos, written, true);
        pos += 4 + written;
        count++;
        def[r >>> 3]! |= 1 << (r & 7);
      }
    } catch (error) {
      throw new RowFailure(i, error);
    }
    buf.length = pos;
    this.rowCount = r;
    this.valueCount = count;
  }

  /** Walks the vector's length prefixes to cut pages where `append` would, then copies the bytes. */
  protected override appendVectorValues(data: Uint8Array, count: number, valueRows: SetBitCursor): void {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const start = this.values.length;
    const limit = this.pageSizeLimit;
    for (let k = 0, offset = 0; k < count; k++) {
      const pos = start + offset;
      if (pos - this.pageStartByte >= limit) {
        this.cutPage(this.rowCount + valueRows.indexOf(k), this.valueCount + k, pos);
      }
      offset += 4 + view.getUint32(offset, true);
    }
    this.appendPlainBytes(data);
  }
}

/** Below this length an inline ASCII loop beats the native call behind Buffer#write. */
const INLINE_ASCII_CHARS = 64;

function writeUtf8(bytes: Buffer, offset: number, text: string): number {
  const length = text.length;
  if (length <= INLINE_ASCII_CHARS) {
    for (let k = 0; k < length; k++) {
      const c = text.charCodeAt(k);
      if (c > 0x7f) return bytes.write(text, offset, 'utf8');
      bytes[offset + k] = c;
    }
    return length;
  }
  return bytes.write(text, offset, 'utf8');
}

function toBinary(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  throw new TypeError(`expected a Uint8Array or Buffer, got ${describeValue(v)}`);
}

function toJsonText(v: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch (error) {
    throw new TypeError(`value is not JSON-serialisable: ${(error as Error).message}`);
  }
  if (text === undefined) throw new TypeError(`value is not JSON-serialisable: ${describeValue(v)}`);
  return text;
}

export function createColumnEncoder(spec: ColumnSpec, pageSizeLimit: number): ColumnEncoder {
  switch (spec.type) {
    case 'boolean':
      return new BooleanEncoder(spec, pageSizeLimit);
    case 'int32':
    case 'date':
      return new Int32Encoder(spec, pageSizeLimit);
    case 'decimal':
      return spec.typeLength > 0
        ? new WideDecimalEncoder(spec, pageSizeLimit)
        : new Int64Encoder(spec, pageSizeLimit);
    case 'int64':
    case 'timestamp':
      return new Int64Encoder(spec, pageSizeLimit);
    case 'float64':
      return new DoubleEncoder(spec, pageSizeLimit);
    case 'string':
    case 'json':
    case 'binary':
      return new ByteArrayEncoder(spec, pageSizeLimit);
    case 'list':
      throw new TypeError('A list column is encoded by ListColumnEncoder (list-encoder.ts)');
  }
}

/**
 * The pages of a column chunk from its cuts (row, value, byte triples where a page ends) and the chunk's
 * ends. A cut that would leave an empty page is skipped, but a chunk always has one page.
 */
export function slicePages(
  cuts: readonly number[],
  rowCount: number,
  valueCount: number,
  byteCount: number,
): PageSlice[] {
  const pages: PageSlice[] = [];
  let rowStart = 0;
  let valueStart = 0;
  let byteStart = 0;
  for (let i = 0; i <= cuts.length; i += 3) {
    const last = i === cuts.length;
    const rowEnd = last ? rowCount : cuts[i]!;
    const valueEnd = last ? valueCount : cuts[i + 1]!;
    const byteEnd = last ? byteCount : cuts[i + 2]!;
    if (rowEnd > rowStart || pages.length === 0) {
      pages.push({
        rowStart,
        rowCount: rowEnd - rowStart,
        valueStart,
        valueCount: valueEnd - valueStart,
        byteStart,
        byteEnd,
      });
    }
    rowStart = rowEnd;
    valueStart = valueEnd;
    byteStart = byteEnd;
  }
  return pages;
}
