/**
 * Timestamps as exact text. A JS Date holds milliseconds, and microseconds as a double are exact only
 * up to 2^53 µs (year 2255): sources hand out timestamps as ISO-8601 text with six fractional digits
 * (`2024-03-10T12:34:56.123456Z`) and the gateway turns that text into INT64 microseconds with integer
 * arithmetic, so `9999-12-31 23:59:59.999999` is the same value in a row batch and in a file.
 */

const MICROS_PER_SECOND = 1_000_000;
const SECONDS_PER_DAY = 86_400;
/** Seconds whose microseconds stay a safe integer (|µs| < 2^53): numbers, not bigints, below this. */
const SAFE_SECONDS = 9_000_000_000;

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ` of microseconds since 1970 (years outside 0–9999 as ±YYYYYY, like Date). */
export function microsToTimestampText(micros: bigint | number): string {
  let seconds: number;
  let fraction: number;
  if (typeof micros === 'number') {
    seconds = Math.floor(micros / MICROS_PER_SECOND);
    fraction = micros - seconds * MICROS_PER_SECOND;
  } else {
    const whole = micros / 1_000_000n;
    const rest = micros % 1_000_000n;
    seconds = Number(rest < 0n ? whole - 1n : whole);
    fraction = Number(rest < 0n ? rest + 1_000_000n : rest);
  }
  const days = Math.floor(seconds / SECONDS_PER_DAY);
  let second = seconds - days * SECONDS_PER_DAY;
  const hour = Math.floor(second / 3600);
  second -= hour * 3600;
  const minute = Math.floor(second / 60);
  second -= minute * 60;
  return `${dateText(days)}T${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}.${pad(fraction, 6)}Z`;
}

/** `YYYY-MM-DD` of days since 1970-01-01 (years outside 0–9999 as ±YYYYYY). */
export function dateText(days: number): string {
  const [year, month, day] = civilFromDays(days);
  const yearText =
    year >= 0 && year <= 9999 ? pad(year, 4) : `${year < 0 ? '-' : '+'}${pad(Math.abs(year), 6)}`;
  return `${yearText}-${pad(month, 2)}-${pad(day, 2)}`;
}

// ISO-like text as sources and callers write it: 'T' or a space, optional fraction and zone.
const TIMESTAMP_PATTERN =
  /^([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$/;

/**
 * Microseconds since 1970 of ISO-like text, exactly (a number while safe, a bigint beyond ±2^53).
 * Text without a zone is UTC, never the gateway's local time; digits past the microsecond are
 * truncated. Undefined when the text is not such a timestamp or names an impossible date.
 */
export function timestampTextToMicros(text: string): number | bigint | undefined {
  const m = TIMESTAMP_PATTERN.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4] ?? 0);
  const minute = Number(m[5] ?? 0);
  const second = Number(m[6] ?? 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const fraction = m[7] ? Number(m[7].slice(0, 6).padEnd(6, '0')) : 0;
  let offsetSeconds = 0;
  const zone = m[8];
  if (zone && zone !== 'Z' && zone !== 'z') {
    const digits = zone.slice(1).replaceAll(':', '');
    offsetSeconds =
      Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || 0) * 60 + Number(digits.slice(4) || 0);
    if (zone.charCodeAt(0) === 45) offsetSeconds = -offsetSeconds;
  }
  const seconds =
    daysFromCivil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offsetSeconds;
  return secondsToMicros(seconds, fraction);
}

/** seconds × 10^6 + fraction, exactly: a number while safe, a bigint beyond. */
export function secondsToMicros(seconds: number, fraction: number): number | bigint {
  if (seconds < SAFE_SECONDS && seconds > -SAFE_SECONDS) return seconds * MICROS_PER_SECOND + fraction;
  return BigInt(seconds) * 1_000_000n + BigInt(fraction);
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** Days in a month of the proleptic Gregorian calendar (February of a leap year: 29). */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's days_from_civil),
 * for any year: Date.UTC maps years 0–99 to 1900–1999.
 */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** [year, month, day] of days since 1970-01-01 (Hinnant's civil_from_days). */
function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day];
}
