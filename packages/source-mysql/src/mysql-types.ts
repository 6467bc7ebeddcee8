import type { Column, ColumnType, RowValue } from '@backhaul/core';
import type { FieldPacket } from 'mysql2';

/** Column type codes of the MySQL protocol (include/field_types.h), as mysql2 reports them. */
export const mysqlType = {
  decimal: 0,
  tiny: 1,
  short: 2,
  long: 3,
  float: 4,
  double: 5,
  null: 6,
  timestamp: 7,
  longlong: 8,
  int24: 9,
  date: 10,
  time: 11,
  datetime: 12,
  year: 13,
  newdate: 14,
  varchar: 15,
  bit: 16,
  json: 245,
  newdecimal: 246,
  enum: 247,
  set: 248,
  tinyBlob: 249,
  mediumBlob: 250,
  longBlob: 251,
  blob: 252,
  varString: 253,
  string: 254,
  geometry: 255,
} as const;

const UNSIGNED_FLAG = 32;
/** The `binary` character set: BLOB, BINARY and VARBINARY share their type codes with the text types. */
const BINARY_CHARSET = 63;
/** MySQL's DECIMAL holds at most 65 digits. */
const MAX_DECIMAL_DIGITS = 65;

type Converter = (value: unknown) => RowValue;

/** A column and how its values are brought to Backhaul's JS types (undefined: as mysql2 gives them). */
export interface MysqlColumn {
  column: Column;
  convert: Converter | undefined;
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** supportBigNumbers: a BIGINT arrives as a number when safe, as its exact text beyond 2^53. */
const toInt64: Converter = (value) => {
  if (typeof value !== 'string') return value as RowValue;
  const big = BigInt(value);
  return big >= MIN_SAFE && big <= MAX_SAFE ? Number(big) : big;
};
const toBoolean: Converter = (value) => (typeof value === 'number' ? value !== 0 : (value as RowValue));
const toDecimalText: Converter = (value) => String(value);

/** dateStrings and time_zone '+00:00' (mysql-data-source.ts): 'YYYY-MM-DD[ HH:MM:SS[.ffffff]]' in UTC. */
const DATE_TIME_PATTERN = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$/;

/**
 * DATETIME and TIMESTAMP text → exact ISO text with microseconds (`microsToTimestampText`'s form),
 * rearranged, never through a Date: DATETIME(6) keeps its microseconds. Read as UTC, as below;
 * zero dates become NULL.
 */
export function parseTimestamp(value: unknown): RowValue {
  if (typeof value !== 'string') return value as RowValue;
  const m = DATE_TIME_PATTERN.exec(value);
  if (!m) throw new TypeError(`Unexpected MySQL date/time text ${JSON.stringify(value)}`);
  if (m[2] === '00' || m[3] === '00') return null;
  const time = m[4] === undefined ? '00:00:00' : `${m[4]}:${m[5]}:${m[6]}`;
  return `${m[1]}-${m[2]}-${m[3]}T${time}.${(m[7] ?? '').padEnd(6, '0')}Z`;
}

/**
 * DATE (and DATETIME, TIMESTAMP) text → Date. DATETIME names no time zone: it is read as UTC so the
 * value does not depend on the gateway's zone; TIMESTAMP is UTC because the session says so.
 * MySQL's "zero" dates ('0000-00-00', or a zero month/day) are no instant: they become NULL.
 * Microseconds are truncated to the milliseconds a Date holds.
 */
export function parseDateTime(value: unknown): RowValue {
  if (typeof value !== 'string') return value as RowValue;
  const m = DATE_TIME_PATTERN.exec(value);
  if (!m) throw new TypeError(`Unexpected MySQL date/time text ${JSON.stringify(value)}`);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month === 0 || day === 0) return null;
  const millis = m[7] ? Number(m[7].padEnd(3, '0').slice(0, 3)) : 0;
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  date.setUTCFullYear(Number(m[1]), month - 1, day);
  date.setUTCHours(Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0), millis);
  return date;
}

/** The Backhaul column of a result field, from its type code, flags, length and character set. */
export function columnFromField(field: FieldPacket): MysqlColumn {
  const name = field.name;
  const code = field.columnType ?? field.type ?? mysqlType.varString;
  const flags = typeof field.flags === 'number' ? field.flags : 0;
  const unsigned = (flags & UNSIGNED_FLAG) !== 0;
  const binaryCharset = field.characterSet === BINARY_CHARSET;
  const column = (type: ColumnType, extra: Partial<Column> = {}): Column => ({
    name,
    type,
    nullable: true,
    ...extra,
  });

  switch (code) {
    case mysqlType.tiny:
      // BOOLEAN is TINYINT(1): the display width is the only trace the protocol keeps of it.
      if (field.columnLength === 1) return { column: column('boolean'), convert: toBoolean };
      return { column: column('int32'), convert: undefined };
    case mysqlType.short:
    case mysqlType.int24:
    case mysqlType.year:
      return { column: column('int32'), convert: undefined };
    case mysqlType.long:
      // INT UNSIGNED reaches 4 294 967 295: past int32.
      return { column: column(unsigned ? 'int64' : 'int32'), convert: undefined };
    case mysqlType.longlong:
      // BIGINT UNSIGNED reaches 2^64 - 1, past Parquet's signed INT64: an exact decimal(20, 0) instead.
      if (unsigned) return { column: column('decimal', { precision: 20, scale: 0 }), convert: toDecimalText };
      return { column: column('int64'), convert: toInt64 };
    case mysqlType.float:
    case mysqlType.double:
      return { column: column('float64'), convert: undefined };
    case mysqlType.decimal:
    case mysqlType.newdecimal:
      return {
        column: decimalColumn(name, field.columnLength ?? 0, field.decimals, unsigned),
        convert: undefined,
      };
    case mysqlType.date:
    case mysqlType.newdate:
      return { column: column('date'), convert: parseDateTime };
    case mysqlType.datetime:
    case mysqlType.timestamp:
      return { column: column('timestamp'), convert: parseTimestamp };
    case mysqlType.json:
      return { column: column('json'), convert: undefined };
    case mysqlType.bit:
      return { column: column('binary'), convert: undefined };
    case mysqlType.null:
      // `SELECT NULL`: no type at all, and the binary character set would wrongly say bytes.
      return { column: column('string'), convert: undefined };
    case mysqlType.geometry:
      // mysql2 decodes geometries into points/arrays of points: JSON keeps that shape.
      return { column: column('json'), convert: undefined };
    default:
      // MariaDB stores JSON as LONGTEXT; with extended metadata (10.5+) it says so in the field.
      if (field.extendedFormat === 'json') return { column: column('json'), convert: undefined };
      // TIME ('-838:59:59'), ENUM, SET, text: strings. The binary character set makes them bytes.
      return {
        column: column(binaryCharset && code !== mysqlType.time ? 'binary' : 'string'),
        convert: undefined,
      };
  }
}

/**
 * The protocol gives a DECIMAL's display length: its digits, plus one for the point when it has a
 * scale, plus one for the sign unless UNSIGNED.
 */
export function decimalColumn(name: string, length: number, scale: number, unsigned: boolean): Column {
  const precision = length - (scale > 0 ? 1 : 0) - (unsigned ? 0 : 1);
  if (precision < 1 || precision > MAX_DECIMAL_DIGITS || scale < 0 || scale > precision) {
    return { name, type: 'string', nullable: true };
  }
  return { name, type: 'decimal', nullable: true, precision, scale };
}
