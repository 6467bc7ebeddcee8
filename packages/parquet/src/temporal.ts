/**
 * Conversions of dates and timestamps to the integers Parquet stores: DATE is INT32 days since
 * 1970-01-01, TIMESTAMP(MICROS) is INT64 microseconds since 1970-01-01T00:00:00Z.
 */
import { describeValue } from './decimal.js';

const MS_PER_DAY = 86_400_000;
const TWO_POW_63 = 2 ** 63;

export function dateToDays(value: unknown): number {
  if (typeof value === 'number') {
    if ((value | 0) !== value) throw new TypeError(`expected a whole number of days, got ${value}`);
    return value;
  }
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new TypeError('expected a date, got an invalid Date');
    // floor, not trunc: a pre-1970 instant belongs to the earlier day.
    return Math.floor(ms / MS_PER_DAY);
  }
  if (typeof value === 'string') {
    const days = parseIsoDate(value);
    if (days === undefined) throw new TypeError(`expected a 'YYYY-MM-DD' date, got ${describeValue(value)}`);
    return days;
  }
  throw new TypeError(`expected a date (days, Date or 'YYYY-MM-DD'), got ${describeValue(value)}`);
}

export function timestampToMicros(value: unknown): number {
  let micros: number;
  if (value instanceof Date) {
    micros = value.getTime() * 1000;
    if (Number.isNaN(micros)) throw new TypeError('expected a timestamp, got an invalid Date');
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`expected a timestamp in milliseconds, got ${value}`);
    micros = Math.round(value * 1000);
  } else if (typeof value === 'string') {
    micros = parseTimestamp(value);
  } else {
    throw new TypeError(
      `expected a timestamp (Date, epoch milliseconds or ISO string), got ${describeValue(value)}`,
    );
  }
  if (micros >= TWO_POW_63 || micros < -TWO_POW_63) {
    throw new RangeError(`timestamp ${describeValue(value)} is outside the INT64 microsecond range`);
  }
  return micros;
}

function parseIsoDate(text: string): number | undefined {
  if (text.length !== 10 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return undefined;
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  return daysFromCivil(year, month, day);
}

// SQL drivers hand out 'YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]' as well as ISO 8601 with a 'T'.
const TIMESTAMP_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * Microsecond-exact parse of ISO-like timestamps (Date.parse would drop the microseconds). A string without
 * an offset is taken as UTC, not local time, so output does not depend on the gateway's time zone.
 * Digits past the microsecond are truncated.
 */
function parseTimestamp(text: string): number {
  const m = TIMESTAMP_PATTERN.exec(text);
  if (!m) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new TypeError(`expected an ISO timestamp, got ${describeValue(text)}`);
    return ms * 1000;
  }
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4] ?? 0);
  const minute = Number(m[5] ?? 0);
  const second = Number(m[6] ?? 0);
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new TypeError(`expected a valid timestamp, got ${describeValue(text)}`);
  }
  const fraction = m[7] ? Number(`${m[7]}00000`.slice(0, 6)) : 0;
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone && zone !== 'Z' && zone !== 'z') {
    const sign = zone.charCodeAt(0) === 45 ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0));
  }
  const seconds =
    daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60;
  return seconds * 1_000_000 + fraction;
}

function digitsAt(text: string, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's days_from_civil). Used instead
 * of Date.UTC, which maps years 0..99 to 1900..1999.
 */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}
