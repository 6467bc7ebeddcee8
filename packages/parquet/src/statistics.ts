/**
 * Min/max statistics, in the type-defined sort order that `FileMetaData.column_orders` declares:
 * signed for INT32/INT64 (ints, dates, timestamps, INT64 decimals), IEEE order for DOUBLE without NaN,
 * false < true, unsigned bytewise for BYTE_ARRAY, and two's complement big-endian for
 * FIXED_LEN_BYTE_ARRAY decimals. Values are encoded as PLAIN without a length prefix, as the spec asks.
 */
import { PhysicalType } from './format-constants.js';

export interface MinMax {
  min: Uint8Array;
  max: Uint8Array;
}

/**
 * Longest BYTE_ARRAY min/max written. A longer one is left out rather than truncated (a truncated max
 * would need rounding up): the page or chunk keeps its null_count but no bounds, so readers just read it.
 */
export const MAX_STATISTICS_BYTES = 64;

/** Compares two encoded statistics values of a physical type (decimal FLBA as signed big-endian). */
export function compareStat(physicalType: PhysicalType, a: Uint8Array, b: Uint8Array): number {
  const va = new DataView(a.buffer, a.byteOffset, a.byteLength);
  const vb = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (physicalType) {
    case PhysicalType.BOOLEAN:
      return a[0]! - b[0]!;
    case PhysicalType.INT32:
      return va.getInt32(0, true) - vb.getInt32(0, true);
    case PhysicalType.INT64: {
      const x = va.getBigInt64(0, true);
      const y = vb.getBigInt64(0, true);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case PhysicalType.DOUBLE: {
      const x = va.getFloat64(0, true);
      const y = vb.getFloat64(0, true);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case PhysicalType.FIXED_LEN_BYTE_ARRAY:
      if ((a[0]! ^ b[0]!) & 0x80) return a[0]! & 0x80 ? -1 : 1;
      return Buffer.compare(a, b);
    default:
      return Buffer.compare(a, b);
  }
}

/** Merges page bounds into chunk bounds; undefined if any part with values had none. */
export function mergeMinMax(
  physicalType: PhysicalType,
  parts: readonly (MinMax | undefined)[],
): MinMax | undefined {
  let merged: MinMax | undefined;
  for (const part of parts) {
    if (part === undefined) return undefined;
    if (merged === undefined) merged = { ...part };
    else {
      if (compareStat(physicalType, part.min, merged.min) < 0) merged.min = part.min;
      if (compareStat(physicalType, part.max, merged.max) > 0) merged.max = part.max;
    }
  }
  return merged;
}

/** A DataView over a buffer: its reads compile to plain loads, where `Buffer#readInt32LE` and kin assemble bytes. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Bounds of `count` INT32 values at `bytes[offset..]`. */
export function int32MinMax(bytes: Buffer, offset: number, count: number): MinMax {
  const view = viewOf(bytes);
  let min = view.getInt32(offset, true);
  let max = min;
  for (let k = 1, p = offset + 4; k < count; k++, p += 4) {
    const v = view.getInt32(p, true);
    if (v < min) min = v;
    else if (v > max) max = v;
  }
  const out = Buffer.allocUnsafe(8);
  out.writeInt32LE(min, 0);
  out.writeInt32LE(max, 4);
  return { min: out.subarray(0, 4), max: out.subarray(4, 8) };
}

/** Bounds of `count` INT64 values, compared as (signed high word, unsigned low word). */
export function int64MinMax(bytes: Buffer, offset: number, count: number): MinMax {
  const view = viewOf(bytes);
  let minAt = offset;
  let maxAt = offset;
  let minHi = view.getInt32(offset + 4, true);
  let minLo = view.getUint32(offset, true);
  let maxHi = minHi;
  let maxLo = minLo;
  for (let k = 1, p = offset + 8; k < count; k++, p += 8) {
    const hi = view.getInt32(p + 4, true);
    const lo = view.getUint32(p, true);
    if (hi < minHi || (hi === minHi && lo < minLo)) {
      minHi = hi;
      minLo = lo;
      minAt = p;
    } else if (hi > maxHi || (hi === maxHi && lo > maxLo)) {
      maxHi = hi;
      maxLo = lo;
      maxAt = p;
    }
  }
  return {
    min: Buffer.from(bytes.subarray(minAt, minAt + 8)),
    max: Buffer.from(bytes.subarray(maxAt, maxAt + 8)),
  };
}

/** Bounds of `count` DOUBLE values without NaN (undefined if all are NaN); a zero min is -0, a zero max +0. */
export function doubleMinMax(bytes: Buffer, offset: number, count: number): MinMax | undefined {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let seen = false;
  const view = viewOf(bytes);
  for (let k = 0, p = offset; k < count; k++, p += 8) {
    const v = view.getFloat64(p, true);
    if (Number.isNaN(v)) continue; // NaN has no place in the order
    seen = true;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!seen) return undefined;
  const out = Buffer.allocUnsafe(16);
  out.writeDoubleLE(min === 0 ? -0 : min, 0);
  out.writeDoubleLE(max === 0 ? 0 : max, 8);
  return { min: out.subarray(0, 8), max: out.subarray(8, 16) };
}

/** Bounds of `count` length-prefixed BYTE_ARRAY values; undefined when a bound is too long to keep. */
export function byteArrayMinMax(bytes: Buffer, offset: number, count: number): MinMax | undefined {
  const view = viewOf(bytes);
  let minStart = offset + 4;
  let minEnd = minStart + view.getUint32(offset, true);
  let maxStart = minStart;
  let maxEnd = minEnd;
  let p = minEnd;
  for (let k = 1; k < count; k++) {
    const start = p + 4;
    const end = start + view.getUint32(p, true);
    if (compareRanges(bytes, start, end, minStart, minEnd) < 0) {
      minStart = start;
      minEnd = end;
    } else if (compareRanges(bytes, start, end, maxStart, maxEnd) > 0) {
      maxStart = start;
      maxEnd = end;
    }
    p = end;
  }
  return boundedByteArrays(bytes, minStart, minEnd, maxStart, maxEnd);
}

export function boundedByteArrays(
  bytes: Buffer,
  minStart: number,
  minEnd: number,
  maxStart: number,
  maxEnd: number,
): MinMax | undefined {
  if (minEnd - minStart > MAX_STATISTICS_BYTES || maxEnd - maxStart > MAX_STATISTICS_BYTES) return undefined;
  return {
    min: Buffer.from(bytes.subarray(minStart, minEnd)),
    max: Buffer.from(bytes.subarray(maxStart, maxEnd)),
  };
}

/** Bounds of `count` FIXED_LEN_BYTE_ARRAY two's complement big-endian values of `width` bytes. */
export function fixedMinMax(bytes: Buffer, offset: number, count: number, width: number): MinMax {
  let minAt = offset;
  let maxAt = offset;
  for (let k = 1, p = offset + width; k < count; k++, p += width) {
    if (compareFixed(bytes, p, minAt, width) < 0) minAt = p;
    else if (compareFixed(bytes, p, maxAt, width) > 0) maxAt = p;
  }
  return {
    min: Buffer.from(bytes.subarray(minAt, minAt + width)),
    max: Buffer.from(bytes.subarray(maxAt, maxAt + width)),
  };
}

function compareFixed(bytes: Buffer, a: number, b: number, width: number): number {
  const signA = bytes[a]! & 0x80;
  const signB = bytes[b]! & 0x80;
  if (signA !== signB) return signA ? -1 : 1;
  return compareRanges(bytes, a, a + width, b, b + width);
}

/** Bytes compared here before handing the rest to `Buffer#compare`. */
const INLINE_COMPARE_BYTES = 16;

/**
 * sign(bytes[aStart..aEnd) − bytes[bStart..bEnd)) in unsigned bytewise order. Values mostly differ in
 * their first bytes, where an inline loop is several times cheaper than the native call behind
 * `Buffer#compare` (which statistics would otherwise make once or twice per value).
 */
export function compareRanges(
  bytes: Buffer,
  aStart: number,
  aEnd: number,
  bStart: number,
  bEnd: number,
): number {
  const aLength = aEnd - aStart;
  const bLength = bEnd - bStart;
  const common = Math.min(aLength, bLength, INLINE_COMPARE_BYTES);
  for (let k = 0; k < common; k++) {
    const d = bytes[aStart + k]! - bytes[bStart + k]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  if (common === aLength || common === bLength) return Math.sign(aLength - bLength);
  // buf.compare(target, targetStart, targetEnd, sourceStart, sourceEnd) is sign(source − target).
  return bytes.compare(bytes, bStart + common, bEnd, aStart + common, aEnd);
}

/** Bounds of a boolean bitmap's `count` bits from bit `start`. */
export function booleanMinMax(bits: Uint8Array, start: number, count: number): MinMax {
  let hasTrue = false;
  let hasFalse = false;
  for (let k = start, end = start + count; k < end && !(hasTrue && hasFalse); k++) {
    if (bits[k >>> 3]! & (1 << (k & 7))) hasTrue = true;
    else hasFalse = true;
  }
  return { min: Uint8Array.of(hasFalse ? 0 : 1), max: Uint8Array.of(hasTrue ? 1 : 0) };
}
