import {
  type Column,
  type ColumnBatch,
  ColumnBatchBuilder,
  type ColumnVectorBuilder,
  daysFromCivil,
  daysInMonth,
  type RowValue,
  secondsToMicros,
} from '@backhaul/core';
import type { FieldPacket } from 'mysql2';
import { columnFromField, mysqlType } from './mysql-types.js';

/**
 * Text-protocol row packets → `ColumnVector` bytes, one cell at a time, with no JS value per cell.
 *
 * Every cell is a length-coded string of the server's text. The common shapes are decoded from the
 * bytes: integers and floats by mysql2's own packet readers (numbers, never strings, for these
 * widths), decimals as their unscaled integer, dates and datetimes by integer arithmetic, text and
 * bytes copied from the packet as they are. Anything else — a shape the fast path does not expect,
 * text that is not valid UTF-8, a geometry, a charset other than UTF-8 — takes the row path's own
 * route for that cell: mysql2's reader, the column's converter (mysql-types.ts), then the column
 * builder. So each value, and each refusal, is exactly what the row path gives.
 */

/** The part of mysql2's Packet the decoder uses: the row's bytes and mysql2's own cell readers. */
export interface RowPacket {
  buffer: Buffer;
  /** Where the next cell starts; the readers move it past the cell they read. */
  offset: number;
  end: number;
  readLengthCodedNumber(): number | null;
  readLengthCodedString(encoding: string | undefined): string | null;
  readLengthCodedBuffer(): Buffer | null;
  parseLengthCodedIntNoBigCheck(): number | null;
  parseLengthCodedInt(supportBigNumbers: boolean): number | string | null;
  parseLengthCodedFloat(): number | null;
  parseGeometryValue(): unknown;
  parseVector?(): unknown;
}

const BOOL = 0;
/** TINYINT…INT, YEAR: mysql2's small-integer reader. */
const INT32 = 1;
/** INT UNSIGNED: a small integer in an int64 column. */
const INT_AS_INT64 = 2;
const INT64 = 3;
const FLOAT64 = 4;
/** DECIMAL of up to 18 digits: the unscaled int64. */
const DECIMAL = 5;
/** BIGINT UNSIGNED: decimal(20, 0) kept as its digits. */
const UNSIGNED_DIGITS = 6;
const DATE = 7;
const TIMESTAMP = 8;
/** Text mysql2 decodes as UTF-8 (or ASCII): copied when the bytes are valid UTF-8. */
const TEXT = 9;
const BYTES = 10;
/** Always the row path's route (geometry, vectors, other charsets). */
const VALUE = 11;

const BINARY_CHARSET = 63;
const VECTOR = 0xf2;
const DASH = 0x2d;
const DOT = 0x2e;
const COLON = 0x3a;
const PLUS = 0x2b;
const ZERO = 0x30;
/** Digits whose integer is exact in a double (and as an int64 number). */
const MAX_EXACT_DIGITS = 15;
const POW10 = Array.from({ length: 19 }, (_, i) => 10 ** i);

export interface ColumnPlan {
  columns: Column[];
  kinds: number[];
  scales: number[];
  /** Per column: the row path's reading of one cell (mysql2's reader, then the column's converter). */
  values: ((packet: RowPacket) => RowValue)[];
}

export function planColumns(fields: readonly FieldPacket[]): ColumnPlan {
  const plan: ColumnPlan = { columns: [], kinds: [], scales: [], values: [] };
  for (const field of fields) {
    const { column, convert } = columnFromField(field);
    const read = mysql2Reader(field);
    plan.columns.push(column);
    plan.kinds.push(kindOf(field, column));
    plan.scales.push(column.scale ?? 0);
    plan.values.push(
      convert === undefined
        ? (read as (packet: RowPacket) => RowValue)
        : (packet) => {
            const value = read(packet);
            return value === null ? null : convert(value);
          },
    );
  }
  return plan;
}

function kindOf(field: FieldPacket, column: Column): number {
  const code = field.columnType ?? field.type;
  const utf8 = field.encoding === 'utf8';
  if (field.extendedFormat === 'json') return utf8 ? TEXT : VALUE;
  switch (code) {
    case mysqlType.tiny:
    case mysqlType.short:
    case mysqlType.long:
    case mysqlType.int24:
    case mysqlType.year:
      return column.type === 'boolean' ? BOOL : column.type === 'int64' ? INT_AS_INT64 : INT32;
    case mysqlType.longlong:
      return column.type === 'int64' ? INT64 : UNSIGNED_DIGITS;
    case mysqlType.float:
    case mysqlType.double:
      return FLOAT64;
    case mysqlType.decimal:
    case mysqlType.newdecimal:
      // Wider decimals (and a display length that names none) are their text in the vector too.
      return column.type === 'decimal' && (column.precision ?? 18) <= 18 ? DECIMAL : TEXT;
    case mysqlType.date:
      return DATE;
    case mysqlType.datetime:
    case mysqlType.timestamp:
      return TIMESTAMP;
    case mysqlType.time:
    case mysqlType.json:
      return TEXT;
    case mysqlType.null:
    case mysqlType.geometry:
    case mysqlType.newdate:
    case VECTOR:
      return VALUE;
    default:
      if (field.characterSet === BINARY_CHARSET) return BYTES;
      return utf8 ? TEXT : VALUE;
  }
}

/**
 * How mysql2's text parser reads a cell of this field with the options every query of this source
 * runs with (supportBigNumbers, dateStrings, jsonStrings, no decimalNumbers): its `readCodeFor`.
 */
function mysql2Reader(field: FieldPacket): (packet: RowPacket) => unknown {
  const encoding = field.encoding;
  if (field.extendedFormat === 'json') return (p) => p.readLengthCodedString(encoding);
  switch (field.columnType ?? field.type) {
    case mysqlType.tiny:
    case mysqlType.short:
    case mysqlType.long:
    case mysqlType.int24:
    case mysqlType.year:
      return (p) => p.parseLengthCodedIntNoBigCheck();
    case mysqlType.longlong:
      return (p) => p.parseLengthCodedInt(true);
    case mysqlType.float:
    case mysqlType.double:
      return (p) => p.parseLengthCodedFloat();
    case mysqlType.null:
      return (p) => p.readLengthCodedNumber();
    case mysqlType.decimal:
    case mysqlType.newdecimal:
    case mysqlType.date:
    case mysqlType.datetime:
    case mysqlType.timestamp:
    case mysqlType.time:
      return (p) => p.readLengthCodedString('ascii');
    case mysqlType.geometry:
      return (p) => p.parseGeometryValue();
    case VECTOR:
      return (p) => (p.parseVector ? p.parseVector() : p.readLengthCodedBuffer());
    case mysqlType.json:
      return (p) => p.readLengthCodedString('utf8');
    default:
      return field.characterSet === BINARY_CHARSET
        ? (p) => p.readLengthCodedBuffer()
        : (p) => p.readLengthCodedString(encoding);
  }
}

/** Decodes the row packets of one batch into a `ColumnBatch`. */
export class BatchDecoder {
  readonly #plan: ColumnPlan;
  readonly #builder: ColumnBatchBuilder;
  readonly #vectors: readonly ColumnVectorBuilder[];

  constructor(plan: ColumnPlan, capacity: number) {
    this.#plan = plan;
    this.#builder = new ColumnBatchBuilder(plan.columns, capacity);
    this.#vectors = this.#builder.columns;
  }

  get rowCount(): number {
    return this.#builder.rowCount;
  }

  /**
   * One row packet, its offset at the first cell. Throws a BackhaulError (query-failed) for a value
   * the column cannot hold, as the row path's builder does; the batch is then unusable.
   */
  addRow(packet: RowPacket): void {
    const { kinds, scales, values } = this.#plan;
    const vectors = this.#vectors;
    const bytes = packet.buffer;
    for (let c = 0; c < kinds.length; c++) {
      const vector = vectors[c]!;
      const kind = kinds[c]!;
      const start = packet.offset;
      if (start >= packet.end) throw new Error('MySQL sent a row with fewer cells than its columns');
      if (bytes[start] === 0xfb) {
        // NULL, in every type.
        packet.offset = start + 1;
        vector.appendNull();
        continue;
      }
      let done = true;
      switch (kind) {
        case BOOL:
          vector.appendBoolean(packet.parseLengthCodedIntNoBigCheck() !== 0);
          break;
        case INT32: {
          const n = packet.parseLengthCodedIntNoBigCheck()!;
          if ((n | 0) === n) vector.appendInt32(n);
          else done = false;
          break;
        }
        case INT_AS_INT64:
          vector.appendInt64(packet.parseLengthCodedIntNoBigCheck()!);
          break;
        case INT64: {
          // A number while it is a safe integer; its text beyond, which the row path's route takes.
          const n = packet.parseLengthCodedInt(true);
          if (typeof n === 'number') vector.appendInt64(n);
          else done = false;
          break;
        }
        case FLOAT64:
          vector.appendFloat64(packet.parseLengthCodedFloat()!);
          break;
        default: {
          const length = packet.readLengthCodedNumber()!;
          const at = packet.offset;
          packet.offset = at + length;
          if (!(packet.offset <= packet.end)) throw new Error('MySQL sent a field past the end of its row');
          done = decodeText(kind, bytes, at, at + length, vector, scales[c]!);
        }
      }
      if (!done) {
        packet.offset = start;
        vector.append(values[c]!(packet));
      }
    }
    // Cells that do not end with the packet mean the columns were misread: fail, never write them.
    if (packet.offset !== packet.end)
      throw new Error('MySQL sent a row whose cells do not match its columns');
  }

  batch(): ColumnBatch {
    return this.#builder.batch();
  }
}

/** A cell of a text-coded kind; false when it is not the shape this fast path decodes. */
function decodeText(
  kind: number,
  bytes: Buffer,
  at: number,
  end: number,
  vector: ColumnVectorBuilder,
  scale: number,
): boolean {
  switch (kind) {
    case TEXT:
      if (!isUtf8(bytes, at, end)) return false;
      vector.appendByteRange(bytes, at, end);
      return true;
    case BYTES:
      vector.appendByteRange(bytes, at, end);
      return true;
    case UNSIGNED_DIGITS:
      // mysql2 turns a ZEROFILL value's leading zeros into a number's digits: its route, not a copy.
      if (bytes[at] === ZERO && end - at > 1) return false;
      vector.appendByteRange(bytes, at, end);
      return true;
    case DECIMAL:
      return appendDecimal(bytes, at, end, vector, scale);
    case DATE:
      return appendDate(bytes, at, end, vector);
    case TIMESTAMP:
      return appendTimestamp(bytes, at, end, vector);
    default:
      return false;
  }
}

/** '-123.45' at scale 2 → -12345; more than 15 digits, or more decimals than the scale: false. */
function appendDecimal(bytes: Buffer, at: number, end: number, vector: ColumnVectorBuilder, scale: number) {
  let i = at;
  const negative = bytes[i] === DASH;
  if (negative || bytes[i] === PLUS) i++;
  let unscaled = 0;
  let digits = 0;
  let decimals = -1;
  for (; i < end; i++) {
    const b = bytes[i]!;
    if (b === DOT && decimals < 0) {
      decimals = 0;
      continue;
    }
    const digit = b - ZERO;
    if (digit < 0 || digit > 9) return false;
    unscaled = unscaled * 10 + digit;
    digits++;
    if (decimals >= 0) decimals++;
  }
  if (decimals < 0) decimals = 0;
  if (digits === 0 || digits > MAX_EXACT_DIGITS || decimals > scale) return false;
  unscaled *= POW10[scale - decimals]!;
  if (!Number.isSafeInteger(unscaled)) return false;
  vector.appendInt64(negative ? -unscaled : unscaled);
  return true;
}

/** 'YYYY-MM-DD' → days since 1970; a zero month or day → NULL (parseDateTime in mysql-types.ts). */
function appendDate(bytes: Buffer, at: number, end: number, vector: ColumnVectorBuilder): boolean {
  if (end - at !== 10 || bytes[at + 4] !== DASH || bytes[at + 7] !== DASH) return false;
  const year = digitsAt(bytes, at, 4);
  const month = digitsAt(bytes, at + 5, 2);
  const day = digitsAt(bytes, at + 8, 2);
  if (year < 0 || month < 0 || day < 0) return false;
  if (month === 0 || day === 0) {
    vector.appendNull();
    return true;
  }
  // The row path's Date rolls a day past the month's end over into the next month, as this does;
  // a month past 12 it leaves to that route.
  if (month > 12) return false;
  vector.appendInt32(daysFromCivil(year, month, day));
  return true;
}

/**
 * 'YYYY-MM-DD[ HH:MM:SS[.f…]]' → µs since 1970 as UTC; a zero month or day → NULL (parseTimestamp).
 * An impossible date or time is left to the row path's route, which refuses it.
 */
function appendTimestamp(bytes: Buffer, at: number, end: number, vector: ColumnVectorBuilder): boolean {
  const length = end - at;
  if (length < 10 || bytes[at + 4] !== DASH || bytes[at + 7] !== DASH) return false;
  const year = digitsAt(bytes, at, 4);
  const month = digitsAt(bytes, at + 5, 2);
  const day = digitsAt(bytes, at + 8, 2);
  if (year < 0 || month < 0 || day < 0) return false;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let fraction = 0;
  if (length > 10) {
    if (length < 19 || bytes[at + 10] !== 0x20 || bytes[at + 13] !== COLON || bytes[at + 16] !== COLON) {
      return false;
    }
    hour = digitsAt(bytes, at + 11, 2);
    minute = digitsAt(bytes, at + 14, 2);
    second = digitsAt(bytes, at + 17, 2);
    if (hour < 0 || minute < 0 || second < 0) return false;
    if (length > 19) {
      const places = length - 20;
      if (bytes[at + 19] !== DOT || places < 1 || places > 6) return false;
      fraction = digitsAt(bytes, at + 20, places);
      if (fraction < 0) return false;
      fraction *= POW10[6 - places]!;
    }
  }
  if (month === 0 || day === 0) {
    vector.appendNull();
    return true;
  }
  if (month > 12 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) return false;
  const seconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
  vector.appendInt64(secondsToMicros(seconds, fraction));
  return true;
}

/** The number of `count` ASCII digits at `at`, or -1 if one is not a digit. */
function digitsAt(bytes: Buffer, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const digit = bytes[i]! - ZERO;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}

/**
 * Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): such bytes decode and
 * re-encode to themselves, so copying them is what the row path's string gives. Anything else is
 * decoded with replacement characters on the row path's route.
 */
export function isUtf8(bytes: Uint8Array, at: number, end: number): boolean {
  let i = at;
  while (i < end) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let size: number;
    let low = 0x80;
    let high = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) size = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      size = 3;
      if (c === 0xe0) low = 0xa0;
      else if (c === 0xed) high = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      size = 4;
      if (c === 0xf0) low = 0x90;
      else if (c === 0xf4) high = 0x8f;
    } else return false;
    if (i + size > end) return false;
    const second = bytes[i + 1]!;
    if (second < low || second > high) return false;
    for (let k = 2; k < size; k++) {
      if ((bytes[i + k]! & 0xc0) !== 0x80) return false;
    }
    i += size;
  }
  return true;
}
