import {
  type Column,
  type ColumnType,
  daysFromCivil,
  microsToTimestampText,
  type RowValue,
  secondsToMicros,
} from '@backhaul/core';
import type { CustomTypesConfig, FieldDef } from 'pg';

/**
 * PostgreSQL type OIDs (pg_type.oid) of the built-in types this package maps. They are fixed in
 * the server's catalog (src/include/catalog/pg_type.dat), so no lookup is needed.
 */
export const oid = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

/**
 * Array type OIDs → their element's OID (pg_type.typelem), for the element types whose values a list
 * holds exactly by the scalar rules below. Arrays of any other type stay their text, as a string.
 */
export const arrayElementOids = new Map<number, number>([
  [1000, oid.bool],
  [1001, oid.bytea],
  [1002, oid.char],
  [1003, oid.name],
  [1005, oid.int2],
  [1007, oid.int4],
  [1009, oid.text],
  [1014, oid.bpchar],
  [1015, oid.varchar],
  [1016, oid.int8],
  [1021, oid.float4],
  [1022, oid.float8],
  [1028, oid.oid],
  [1115, oid.timestamp],
  [1182, oid.date],
  [1185, oid.timestamptz],
  [1231, oid.numeric],
  [2951, oid.uuid],
  [199, oid.json],
  [3807, oid.jsonb],
]);

/** The widest decimal a Backhaul column can state (protocol.ts `columnSchema`). */
const MAX_COLUMN_PRECISION = 76;

type Parser = (text: string) => RowValue;

const identity: Parser = (text) => text;

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** int8 stays exact: a number while it is a safe integer, a bigint beyond 2^53. */
const parseInt8: Parser = (text) => {
  // 15 digits (and a sign) are always safe: skip the BigInt allocation for the common case.
  if (text.length <= 15) return Number(text);
  const value = BigInt(text);
  return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;
};

const parseInteger: Parser = (text) => Number(text);
// parseFloat reads PostgreSQL's 'NaN', 'Infinity' and '-Infinity' as the matching JS values.
const parseDouble: Parser = (text) => Number.parseFloat(text);
const parseBoolean: Parser = (text) => text === 't';
// The session is set to bytea_output = 'hex' (postgres-data-source.ts), so every value is '\x…'.
const parseBytea: Parser = (text) => Buffer.from(text.slice(2), 'hex');

/**
 * 'infinity' and '-infinity' have no Parquet form, and a sentinel far outside the calendar breaks
 * readers (pandas, Python's datetime). They are clamped to the last and first values every reader
 * holds — Python's, Spark's and Java's range, 0001-01-01 to 9999-12-31 — so order, sign and
 * comparisons such as `valid_to > now()` still hold; docs/type-mapping.md says so.
 */
export const INFINITY_DATE_DAYS = 2_932_896;
export const MINUS_INFINITY_DATE_DAYS = -719_162;
export const INFINITY_TIMESTAMP_US = 253_402_300_799_999_999n;
export const MINUS_INFINITY_TIMESTAMP_US = -62_135_596_800_000_000n;
const MS_PER_DAY = 86_400_000;

/** The session runs with DateStyle = 'ISO, YMD' and TimeZone = 'UTC', so the text is fixed. */
const DATE_TIME_PATTERN =
  /^(\d{4,})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( BC)?$/;

/** date text → Date at 00:00 UTC of that day (BC dates as ISO years: 1 BC is year 0). */
export function parseDate(text: string): Date {
  const ms = parseCommonDateTime(text);
  if (ms !== undefined) return new Date(ms);
  if (text === 'infinity') return new Date(INFINITY_DATE_DAYS * MS_PER_DAY);
  if (text === '-infinity') return new Date(MINUS_INFINITY_DATE_DAYS * MS_PER_DAY);
  return new Date(Number(micros(text) / 1000n));
}

/**
 * timestamp and timestamptz text → exact ISO text with microseconds (`microsToTimestampText`). A
 * timestamp without time zone is read as UTC: it names no instant, and UTC keeps the value
 * independent of the gateway's own zone.
 */
export function parseTimestamp(text: string): string {
  const length = text.length;
  // Nearly every value is 'YYYY-MM-DD HH:MM:SS[.f{1,6}][+00]' with a 4-digit AD year: rearranged
  // as text, no number in between. Anything else (BC, 5-digit years, other offsets) is computed.
  if (
    length >= 19 &&
    text.charCodeAt(4) === DASH &&
    text.charCodeAt(7) === DASH &&
    text.charCodeAt(10) === 32 &&
    text.charCodeAt(13) === COLON &&
    text.charCodeAt(16) === COLON
  ) {
    let end = length;
    if (text.endsWith('+00')) end -= 3;
    const fraction = end > 20 && text.charCodeAt(19) === DOT ? text.slice(20, end) : '';
    if (end === 19 || (fraction.length > 0 && fraction.length <= 6 && end === 20 + fraction.length)) {
      return `${text.slice(0, 10)}T${text.slice(11, 19)}.${fraction.padEnd(6, '0')}Z`;
    }
  }
  if (text === 'infinity') return microsToTimestampText(INFINITY_TIMESTAMP_US);
  if (text === '-infinity') return microsToTimestampText(MINUS_INFINITY_TIMESTAMP_US);
  return microsToTimestampText(micros(text));
}

/** Microseconds since 1970 of any date/time text of the session's DateStyle, exactly. */
function micros(text: string): bigint {
  const m = DATE_TIME_PATTERN.exec(text);
  if (!m) {
    // Not the ISO form: a DateStyle this code did not set. Better an exact failure than a shift.
    throw new TypeError(`Unexpected PostgreSQL date/time text ${JSON.stringify(text)}`);
  }
  let year = Number(m[1]);
  // 1 BC is ISO year 0, 2 BC is -1: the proleptic calendar that Date and Parquet use.
  if (m[12]) year = 1 - year;
  let seconds =
    daysFromCivil(year, Number(m[2]), Number(m[3])) * 86_400 +
    Number(m[4] ?? 0) * 3600 +
    Number(m[5] ?? 0) * 60 +
    Number(m[6] ?? 0);
  if (m[8]) {
    // Only present for timestamptz; with TimeZone = 'UTC' it is '+00', but honour it anyway.
    const offset = (Number(m[9]) * 60 + Number(m[10] ?? 0)) * 60 + Number(m[11] ?? 0);
    seconds -= m[8] === '-' ? -offset : offset;
  }
  return BigInt(secondsToMicros(seconds, m[7] ? Number(m[7].padEnd(6, '0')) : 0));
}

const DASH = 45;
const COLON = 58;
const DOT = 46;
const PLUS = 43;

/**
 * Epoch milliseconds of 'YYYY-MM-DD[ HH:MM:SS[.f{1,6}]][±HH[:MM[:SS]]]' with a 4-digit year from
 * 0100 on (Date.UTC maps years 0–99 to 1900–1999), or undefined for any other shape — BC, longer
 * years, infinity, garbage — which the regex path then reads or rejects exactly as before.
 */
function parseCommonDateTime(text: string): number | undefined {
  const length = text.length;
  if (length < 10 || text.charCodeAt(4) !== DASH || text.charCodeAt(7) !== DASH) return undefined;
  const century = twoDigits(text, 0);
  const yearOfCentury = twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  if (century < 1 || yearOfCentury < 0 || month < 0 || day < 0) return undefined;
  const year = century * 100 + yearOfCentury;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let millis = 0;
  let pos = 10;
  if (pos < length) {
    if (
      length < 19 ||
      text.charCodeAt(10) !== 32 ||
      text.charCodeAt(13) !== COLON ||
      text.charCodeAt(16) !== COLON
    ) {
      return undefined;
    }
    hour = twoDigits(text, 11);
    minute = twoDigits(text, 14);
    second = twoDigits(text, 17);
    if (hour < 0 || minute < 0 || second < 0) return undefined;
    pos = 19;
    if (pos < length && text.charCodeAt(pos) === DOT) {
      let digits = 0;
      pos++;
      for (; pos < length; pos++, digits++) {
        const d = text.charCodeAt(pos) - 48;
        if (d < 0 || d > 9) break;
        if (digits < 3) millis = millis * 10 + d;
      }
      if (digits < 1 || digits > 6) return undefined;
      for (let i = digits; i < 3; i++) millis *= 10;
    }
  }
  let offsetMs = 0;
  if (pos < length) {
    const sign = text.charCodeAt(pos);
    if ((sign !== PLUS && sign !== DASH) || pos + 3 > length) return undefined;
    const hours = twoDigits(text, pos + 1);
    if (hours < 0) return undefined;
    let offset = hours * 3600;
    pos += 3;
    for (let unit = 60; pos < length && unit >= 1; unit /= 60) {
      if (text.charCodeAt(pos) !== COLON || pos + 3 > length) return undefined;
      const value = twoDigits(text, pos + 1);
      if (value < 0) return undefined;
      offset += value * unit;
      pos += 3;
    }
    if (pos !== length) return undefined;
    offsetMs = (sign === DASH ? -offset : offset) * 1000;
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMs;
}

/** The two ASCII digits at `at` as a number 0–99, or -1 when either is not a digit. */
function twoDigits(text: string, at: number): number {
  const tens = text.charCodeAt(at) - 48;
  const ones = text.charCodeAt(at + 1) - 48;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : -1;
}

/** The parser of a scalar type's text (identity for types that stay text: numeric, text, json, uuid…). */
export function scalarParser(typeId: number): Parser {
  return parsers.get(typeId) ?? identity;
}

const parsers = new Map<number, Parser>([
  [oid.bool, parseBoolean],
  [oid.bytea, parseBytea],
  [oid.int2, parseInteger],
  [oid.int4, parseInteger],
  [oid.int8, parseInt8],
  [oid.oid, parseInteger],
  [oid.float4, parseDouble],
  [oid.float8, parseDouble],
  [oid.date, parseDate],
  [oid.timestamp, parseTimestamp],
  [oid.timestamptz, parseTimestamp],
]);

/**
 * Type parsers handed to each cursor (never `pg.types.setTypeParser`, which would change every
 * other pg user in the process). Everything not listed — numeric, text, json, uuid, time,
 * intervals, arrays, enums — stays the exact text PostgreSQL sent; the cursor then parses the
 * arrays it reads as lists (postgres-arrays.ts), where a bad value can name its column.
 */
export const cursorTypes: CustomTypesConfig = {
  getTypeParser: ((id: number) => parsers.get(id) ?? identity) as CustomTypesConfig['getTypeParser'],
};

const simple: Partial<Record<number, ColumnType>> = {
  [oid.bool]: 'boolean',
  [oid.bytea]: 'binary',
  [oid.int2]: 'int32',
  [oid.int4]: 'int32',
  [oid.int8]: 'int64',
  // oid is an unsigned 32-bit integer: int32 would overflow past 2^31.
  [oid.oid]: 'int64',
  [oid.float4]: 'float64',
  [oid.float8]: 'float64',
  [oid.date]: 'date',
  [oid.timestamp]: 'timestamp',
  [oid.timestamptz]: 'timestamp',
  [oid.json]: 'json',
  [oid.jsonb]: 'json',
};

/**
 * The column a RowDescription field becomes; anything not mapped is its text, as a string. An array
 * of a mapped element type is a list of that type; its type modifier is the element's (numeric(12,2)[]
 * is a list of decimal(12, 2)).
 */
export function columnFromField(field: Pick<FieldDef, 'name' | 'dataTypeID' | 'dataTypeModifier'>): Column {
  const name = field.name;
  const elementOid = arrayElementOids.get(field.dataTypeID);
  if (elementOid !== undefined) {
    const { type, precision, scale } = columnFromField({ ...field, dataTypeID: elementOid });
    if (type !== 'list') {
      const element = { type, ...(precision === undefined ? {} : { precision, scale }) };
      return { name, type: 'list', nullable: true, element };
    }
  }
  if (field.dataTypeID === oid.numeric) return numericColumn(name, field.dataTypeModifier);
  return { name, type: simple[field.dataTypeID] ?? 'string', nullable: true };
}

/**
 * numeric(p, s) carries its precision and scale in the type modifier: ((p << 16) | s) + 4, the
 * scale an 11-bit signed field since PostgreSQL 15 allows negative scales. An unconstrained
 * numeric (typmod -1, e.g. sum() or avg()) has no fixed scale, so no decimal column fits it: it
 * travels as its exact text in a string column. So does any shape Parquet's DECIMAL cannot hold
 * (negative scale, scale above precision, precision above 76).
 */
export function numericColumn(name: string, typmod: number): Column {
  if (typmod < 4) return { name, type: 'string', nullable: true };
  const precision = ((typmod - 4) >> 16) & 0xffff;
  const scale = ((((typmod - 4) & 0x7ff) ^ 1024) - 1024) | 0;
  if (precision < 1 || precision > MAX_COLUMN_PRECISION || scale < 0 || scale > precision) {
    return { name, type: 'string', nullable: true };
  }
  return { name, type: 'decimal', nullable: true, precision, scale };
}
