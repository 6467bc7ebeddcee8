import { type Column, type ColumnBatch, type ColumnVector, ColumnVectorBuilder } from '@backhaul/core';
import { type ListParser, listParserFor } from './postgres-arrays.js';
import {
  columnFromField,
  INFINITY_DATE_DAYS,
  INFINITY_TIMESTAMP_US,
  MINUS_INFINITY_DATE_DAYS,
  MINUS_INFINITY_TIMESTAMP_US,
  oid,
} from './postgres-types.js';
import type { DescribedField } from './postgres-wire.js';

/**
 * DataRow fields → `ColumnVector` bytes, one field at a time, with no JS value in between.
 *
 * Each column is asked for in the format that is cheapest to turn into its vector: the binary form
 * for numbers, dates, timestamps, booleans, bytea and decimals (a byte swap or an addition), and the
 * text form for everything that travels as a string (text, json, uuid, time, intervals, arrays…):
 * that text is the UTF-8 the vector stores, copied as it is, and exactly what the row path reads.
 * float4 comes as text too: its shortest decimal form is the value the row path gives. Arrays read
 * as lists come as text and are parsed by the row path's own parser (postgres-arrays.ts) into a
 * list vector, so both paths give the same lists and refuse the same arrays.
 */

const BOOL = 0;
const INT2 = 1;
const INT4 = 2;
const INT8 = 3;
const OID = 4;
const FLOAT8 = 5;
const FLOAT_TEXT = 6;
const DATE = 7;
const TIMESTAMP = 8;
const NUMERIC = 9;
/** The field's bytes, length-prefixed: text in text format, bytea in binary format. */
const BYTES = 10;
/** An array read as a list: its text, parsed as the row path parses it (postgres-arrays.ts). */
const LIST = 11;

export interface ColumnPlan {
  columns: Column[];
  /** Result format per column for Bind: 1 binary, 0 text. */
  formats: (0 | 1)[];
  kinds: number[];
  /** Decimal scale per column (numeric only). */
  scales: number[];
  /** Per column, the parser of a list column's array text. */
  lists: (ListParser | undefined)[];
}

export function planColumns(fields: readonly DescribedField[]): ColumnPlan {
  const plan: ColumnPlan = { columns: [], formats: [], kinds: [], scales: [], lists: [] };
  for (const field of fields) {
    const column = columnFromField(field);
    const list = listParserFor(field);
    plan.lists.push(list);
    const kind = list ? LIST : kindOf(field.dataTypeID, column);
    plan.columns.push(column);
    plan.kinds.push(kind);
    plan.formats.push(
      kind === FLOAT_TEXT || kind === LIST || (kind === BYTES && field.dataTypeID !== oid.bytea) ? 0 : 1,
    );
    plan.scales.push(column.scale ?? 0);
  }
  return plan;
}

function kindOf(typeId: number, column: Column): number {
  switch (typeId) {
    case oid.bool:
      return BOOL;
    case oid.int2:
      return INT2;
    case oid.int4:
      return INT4;
    case oid.int8:
      return INT8;
    case oid.oid:
      return OID;
    case oid.float8:
      return FLOAT8;
    case oid.float4:
      return FLOAT_TEXT;
    case oid.date:
      return DATE;
    case oid.timestamp:
    case oid.timestamptz:
      return TIMESTAMP;
    case oid.numeric:
      // A decimal column of up to 18 digits holds int64 unscaled values; wider ones and
      // unconstrained numerics travel as their text (columnFromField decides which).
      return column.type === 'decimal' && (column.precision ?? 18) <= 18 ? NUMERIC : BYTES;
    default:
      return BYTES;
  }
}

const TWO_POW_32 = 4294967296;
/** PostgreSQL counts dates and timestamps from 2000-01-01; vectors from 1970-01-01. */
const EPOCH_SHIFT_DAYS = 10_957;
const EPOCH_SHIFT_US = 946_684_800_000_000;
const SHIFT_HI = Math.floor(EPOCH_SHIFT_US / TWO_POW_32);
const SHIFT_LO = EPOCH_SHIFT_US - SHIFT_HI * TWO_POW_32;
/** Past this many µs since 1970 a timestamp is no INT64 (PostgreSQL's own range ends in 294276 AD). */
const MAX_TIMESTAMP_US = 2 ** 63;
const NUMERIC_NAN = 0xc000;
const NUMERIC_POS = 0x0000;
const NUMERIC_NEG = 0x4000;
/** Below this many bytes a field is copied byte by byte (see addRow). */
const INLINE_COPY_BYTES = 48;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** One column of the batch being read. */
class VectorBuilder {
  data: Buffer;
  pos = 0;
  valueCount = 0;
  hasNull = false;
  readonly validity: Uint8Array;

  constructor(rows: number, byteEstimate: number) {
    this.data = Buffer.allocUnsafe(Math.max(64, byteEstimate));
    this.validity = new Uint8Array((rows + 7) >>> 3);
  }

  /** Room for `bytes` more; the data buffer doubles when full. */
  reserve(bytes: number): Buffer {
    const needed = this.pos + bytes;
    if (needed > this.data.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.data.length * 2));
      this.data.copy(grown, 0, 0, this.pos);
      this.data = grown;
    }
    return this.data;
  }

  vector(rowCount: number): ColumnVector {
    return {
      data: this.data.subarray(0, this.pos),
      valueCount: this.valueCount,
      validity: this.hasNull ? this.validity.subarray(0, (rowCount + 7) >>> 3) : undefined,
    };
  }
}

/** Bytes each kind's value takes in a vector (length-prefixed kinds: an estimate, refined per batch). */
const FIXED_WIDTH = [1, 4, 4, 8, 8, 8, 8, 4, 8, 8, 0, 1];

/**
 * Decodes the DataRows of one fetch into a `ColumnBatch`. A value the column cannot hold (a NaN
 * numeric, a timestamp past a Date's range) throws a RangeError naming the column.
 */
export class BatchDecoder {
  rowCount = 0;
  readonly #plan: ColumnPlan;
  readonly #builders: VectorBuilder[];
  /** List columns' vectors (counts and elements), built from each array's parsed elements. */
  readonly #lists: (ColumnVectorBuilder | undefined)[];
  readonly #capacity: number;

  /** `textBytesPerRow`: per column, bytes per row of the previous batch, to size this one's buffers. */
  constructor(plan: ColumnPlan, rows: number, textBytesPerRow: readonly number[]) {
    this.#plan = plan;
    this.#capacity = rows;
    this.#builders = plan.kinds.map(
      (kind, c) => new VectorBuilder(rows, rows * (FIXED_WIDTH[kind] || (textBytesPerRow[c] ?? 16) + 4)),
    );
    this.#lists = plan.kinds.map((kind, c) =>
      kind === LIST ? new ColumnVectorBuilder(plan.columns[c]!, rows) : undefined,
    );
  }

  /** One DataRow message, body `bytes[start, end)`. */
  addRow(bytes: Buffer, start: number, end: number): void {
    const kinds = this.#plan.kinds;
    const builders = this.#builders;
    const row = this.rowCount;
    const fieldCount = bytes.readInt16BE(start);
    if (fieldCount !== kinds.length) {
      throw new Error(`PostgreSQL sent ${fieldCount} fields in a row of ${kinds.length} columns`);
    }
    // Execute asked for this many rows: more would break maxRows (and the validity bitmap's size).
    if (row >= this.#capacity) this.#refuseRow();
    let at = start + 2;
    for (let c = 0; c < fieldCount; c++) {
      const length = bytes.readInt32BE(at);
      at += 4;
      const builder = builders[c]!;
      const kind = kinds[c]!;
      if (length < 0) {
        builder.hasNull = true;
        if (kind === LIST) this.#lists[c]!.appendNull();
        continue;
      }
      if (at + length > end) throw new Error('PostgreSQL sent a field past the end of its row');
      if (kind === LIST) {
        this.#lists[c]!.append(this.#plan.lists[c]!(bytes.toString('utf8', at, at + length)));
        at += length;
        continue;
      }
      const out = builder.reserve(kind === BYTES ? 4 + length : 8);
      let pos = builder.pos;
      switch (kind) {
        case BOOL:
          if (length !== 1) this.#refuseLength(c, length);
          out[pos++] = bytes[at] === 0 ? 0 : 1;
          break;
        case INT2:
          if (length !== 2) this.#refuseLength(c, length);
          out.writeInt32LE(bytes.readInt16BE(at), pos);
          pos += 4;
          break;
        case INT4:
          if (length !== 4) this.#refuseLength(c, length);
          out[pos++] = bytes[at + 3]!;
          out[pos++] = bytes[at + 2]!;
          out[pos++] = bytes[at + 1]!;
          out[pos++] = bytes[at]!;
          break;
        case INT8:
        case FLOAT8:
          if (length !== 8) this.#refuseLength(c, length);
          for (let k = 7; k >= 0; k--) out[pos++] = bytes[at + k]!;
          break;
        case OID:
          if (length !== 4) this.#refuseLength(c, length);
          out.writeUInt32LE(bytes.readUInt32BE(at), pos);
          out.writeUInt32LE(0, pos + 4);
          pos += 8;
          break;
        case FLOAT_TEXT:
          out.writeDoubleLE(Number.parseFloat(bytes.toString('latin1', at, at + length)), pos);
          pos += 8;
          break;
        case DATE:
          if (length !== 4) this.#refuseLength(c, length);
          out.writeInt32LE(pgDays(bytes.readInt32BE(at)), pos);
          pos += 4;
          break;
        case TIMESTAMP:
          if (length !== 8) this.#refuseLength(c, length);
          writeTimestamp(bytes.readInt32BE(at), bytes.readUInt32BE(at + 4), out, pos, this.#name(c));
          pos += 8;
          break;
        case NUMERIC:
          if (!numericLengthFits(bytes, at, length)) this.#refuseLength(c, length);
          writeUnscaled(bytes, at, this.#plan.scales[c]!, out, pos, this.#name(c));
          pos += 8;
          break;
        default:
          out.writeUInt32LE(length, pos);
          pos += 4;
          // Most text fields are short: a loop beats the native call behind Buffer#copy below this.
          if (length <= INLINE_COPY_BYTES) {
            for (let k = 0; k < length; k++) out[pos + k] = bytes[at + k]!;
          } else {
            bytes.copy(out, pos, at, at + length);
          }
          pos += length;
      }
      builder.pos = pos;
      builder.valueCount++;
      builder.validity[row >>> 3]! |= 1 << (row & 7);
      at += length;
    }
    this.rowCount = row + 1;
  }

  batch(): ColumnBatch {
    const vectors = this.#builders.map((b, c) => this.#lists[c]?.vector() ?? b.vector(this.rowCount));
    return { rowCount: this.rowCount, vectors };
  }

  /** Per column, the bytes per row this batch took: the size hint for the next one. */
  bytesPerRow(): number[] {
    return this.#builders.map((b) => (this.rowCount === 0 ? 16 : Math.ceil(b.pos / this.rowCount)));
  }

  #refuseRow(): never {
    throw new Error(`PostgreSQL sent more than the ${this.#capacity} rows asked for`);
  }

  /** Kept out of addRow's loop, which V8 optimises better without the message building. */
  #refuseLength(c: number, length: number): never {
    throw new Error(`PostgreSQL sent a ${length}-byte value for column "${this.#name(c)}"`);
  }

  #name(c: number): string {
    return this.#plan.columns[c]!.name;
  }
}

/** A binary numeric is 8 header bytes and then as many 2-byte digits as its header says. */
function numericLengthFits(bytes: Buffer, at: number, length: number): boolean {
  return length >= 8 && length === 8 + 2 * bytes.readInt16BE(at);
}

function pgDays(days: number): number {
  // ±infinity: clamped as on the row path (postgres-types.ts says why).
  if (days === 0x7fffffff) return INFINITY_DATE_DAYS;
  if (days === -0x80000000) return MINUS_INFINITY_DATE_DAYS;
  return days + EPOCH_SHIFT_DAYS;
}

/** int64 microseconds since 2000 (as its two halves) → int64 microseconds since 1970, little-endian. */
function writeTimestamp(hi: number, lo: number, out: Buffer, pos: number, column: string): void {
  if (hi === 0x7fffffff && lo === 0xffffffff) {
    out.writeBigInt64LE(INFINITY_TIMESTAMP_US, pos);
    return;
  }
  if (hi === -0x80000000 && lo === 0) {
    out.writeBigInt64LE(MINUS_INFINITY_TIMESTAMP_US, pos);
    return;
  }
  if (hi * TWO_POW_32 + lo + EPOCH_SHIFT_US >= MAX_TIMESTAMP_US) {
    throw new RangeError(`Column "${column}": a timestamp past the INT64 microseconds Parquet holds`);
  }
  // Added in two 32-bit halves with a carry: exact, where a double would round past 2^53 µs.
  lo += SHIFT_LO;
  hi += SHIFT_HI;
  if (lo >= TWO_POW_32) {
    lo -= TWO_POW_32;
    hi += 1;
  }
  out.writeUInt32LE(lo, pos);
  out.writeInt32LE(hi, pos + 4);
}

/**
 * numeric's binary form — int16 ndigits, int16 weight, uint16 sign, int16 dscale, then ndigits
 * base-10000 digits — as the int64 unscaled value at the column's scale. The column's typmod makes
 * PostgreSQL round every value to that scale, so the division below is always exact.
 */
function writeUnscaled(bytes: Buffer, at: number, scale: number, out: Buffer, pos: number, column: string) {
  const ndigits = bytes.readInt16BE(at);
  const weight = bytes.readInt16BE(at + 2);
  const sign = bytes.readUInt16BE(at + 4);
  if (sign !== NUMERIC_POS && sign !== NUMERIC_NEG) {
    const what = sign === NUMERIC_NAN ? 'NaN' : 'an infinite numeric';
    throw new RangeError(`Column "${column}": ${what} has no decimal value`);
  }
  // value = digits as one integer × 10^exponent; unscaled = value × 10^scale.
  const exponent = 4 * (weight - ndigits + 1) + scale;
  let small = 0;
  let big: bigint | undefined;
  for (let i = 0; i < ndigits; i++) {
    const digit = bytes.readInt16BE(at + 8 + 2 * i);
    if (big === undefined && small < 2 ** 39) small = small * 10_000 + digit;
    else big = (big ?? BigInt(small)) * 10_000n + BigInt(digit);
  }
  let unscaled: number | bigint;
  if (big === undefined && exponent >= 0 && exponent < POW10.length && small * POW10[exponent]! < 2 ** 53) {
    unscaled = small * POW10[exponent]!;
  } else if (big === undefined && exponent < 0 && -exponent < POW10.length) {
    unscaled = small / POW10[-exponent]!;
    if (!Number.isInteger(unscaled)) throw new RangeError(`Column "${column}": more digits than its scale`);
  } else {
    const whole = big ?? BigInt(small);
    const factor = 10n ** BigInt(Math.abs(exponent));
    if (exponent < 0 && whole % factor !== 0n) {
      throw new RangeError(`Column "${column}": more digits than its scale`);
    }
    unscaled = exponent >= 0 ? whole * factor : whole / factor;
  }
  if (sign === NUMERIC_NEG) unscaled = -unscaled;
  if (typeof unscaled === 'bigint') {
    out.writeBigInt64LE(unscaled, pos);
  } else {
    const hi = Math.floor(unscaled / TWO_POW_32);
    out.writeUInt32LE(unscaled - hi * TWO_POW_32, pos);
    out.writeInt32LE(hi, pos + 4);
  }
}
