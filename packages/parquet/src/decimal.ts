/**
 * Exact conversion of decimal values to the unscaled integer Parquet stores for DECIMAL(precision, scale):
 * the value 12.34 in DECIMAL(9, 2) is stored as 1234. Strings are parsed digit by digit so '0.1' never goes
 * through a binary float; numbers go through their shortest round-trip string for the same reason.
 */

// Up to 10^38, the widest precision; as doubles they are exact up to 1e22 and only compared beyond.
const POW10: readonly number[] = Array.from({ length: 39 }, (_, i) => 10 ** i);
const POW10N: readonly bigint[] = Array.from({ length: 39 }, (_, i) => 10n ** BigInt(i));

/**
 * Returns the unscaled value, as a number when it is a safe integer (the fast, allocation-free case) and as
 * a bigint otherwise. Extra fraction digits are rounded half away from zero, like SQL's CAST to NUMERIC(p, s).
 * Throws TypeError for a value that is not a decimal and RangeError when it needs more than `precision` digits.
 */
export function decimalToUnscaled(value: unknown, precision: number, scale: number): number | bigint {
  if (typeof value === 'string') return parseDecimalString(value, precision, scale);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`expected a finite decimal, got ${value}`);
    if (Number.isInteger(value)) {
      const unscaled = value * POW10[scale]! + 0; // + 0 turns -0 into 0
      if (Math.abs(unscaled) <= Number.MAX_SAFE_INTEGER) return checkPrecision(unscaled, precision, value);
    }
    return parseDecimalString(String(value), precision, scale);
  }
  if (typeof value === 'bigint') return checkPrecisionBig(value * POW10N[scale]!, precision, value);
  throw new TypeError(`expected a decimal string, number or bigint, got ${describeValue(value)}`);
}

function parseDecimalString(text: string, precision: number, scale: number): number | bigint {
  const length = text.length;
  let i = 0;
  let negative = false;
  const first = text.charCodeAt(0);
  if (first === 45 /* - */ || first === 43 /* + */) {
    negative = first === 45;
    i = 1;
  }
  let unscaled = 0;
  let digits = 0;
  for (; i < length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    unscaled = unscaled * 10 + d;
    digits++;
  }
  let fractionDigits = 0;
  let roundUp = false;
  if (i < length && text.charCodeAt(i) === 46 /* . */) {
    for (i++; i < length; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      digits++;
      if (fractionDigits < scale) {
        unscaled = unscaled * 10 + d;
        fractionDigits++;
      } else if (fractionDigits === scale) {
        roundUp = d >= 5; // only the first dropped digit decides half-away-from-zero rounding
        fractionDigits++;
      }
    }
  }
  // Anything else (exponent, whitespace, garbage) or a digit run too long for doubles takes the exact
  // BigInt path, which also produces the error message for invalid input.
  if (i !== length || digits === 0 || unscaled > Number.MAX_SAFE_INTEGER) {
    return parseDecimalSlow(text, precision, scale);
  }
  if (fractionDigits < scale) unscaled *= POW10[scale - fractionDigits]!;
  if (roundUp) unscaled += 1;
  if (unscaled > Number.MAX_SAFE_INTEGER) return parseDecimalSlow(text, precision, scale);
  return checkPrecision(negative && unscaled !== 0 ? -unscaled : unscaled, precision, text);
}

const DECIMAL_PATTERN = /^\s*([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

function parseDecimalSlow(text: string, precision: number, scale: number): bigint {
  const match = DECIMAL_PATTERN.exec(text);
  const intPart = match?.[2] ?? '';
  const fracPart = match?.[3] ?? '';
  if (!match || intPart.length + fracPart.length === 0) {
    throw new TypeError(`expected a decimal, got ${describeValue(text)}`);
  }
  const digits = (intPart + fracPart).replace(/^0+/, '');
  if (digits.length === 0) return 0n;
  // Position of the unscaled value's decimal point relative to the end of `digits`.
  const shift = Number(match[4] ?? 0) - fracPart.length + scale;
  if (digits.length + shift > precision) throw precisionError(text, precision);
  let unscaled: bigint;
  if (shift >= 0) {
    unscaled = BigInt(digits) * 10n ** BigInt(shift);
  } else {
    const keep = digits.length + shift;
    const firstDropped = keep >= 0 ? (digits[keep] ?? '0') : '0';
    unscaled = BigInt(keep > 0 ? digits.slice(0, keep) : '0') + (firstDropped >= '5' ? 1n : 0n);
  }
  return checkPrecisionBig(match[1] === '-' ? -unscaled : unscaled, precision, text);
}

function checkPrecision(unscaled: number, precision: number, original: unknown): number {
  if (Math.abs(unscaled) >= POW10[precision]!) throw precisionError(original, precision);
  return unscaled;
}

function checkPrecisionBig(unscaled: bigint, precision: number, original: unknown): bigint {
  const limit = POW10N[precision]!;
  if (unscaled >= limit || unscaled <= -limit) throw precisionError(original, precision);
  return unscaled;
}

function precisionError(original: unknown, precision: number): RangeError {
  return new RangeError(
    `decimal ${describeValue(original)} needs more than ${precision} digits of precision`,
  );
}

/** A short, safe rendering of an offending value for error messages. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date)
    return `Date(${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()})`;
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  if (typeof value === 'object' && value !== null) return `object ${value.constructor?.name ?? ''}`.trim();
  return `${typeof value} ${String(value)}`;
}
