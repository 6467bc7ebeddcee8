/**
 * Dictionary encoding of one column chunk: each distinct PLAIN value once (the dictionary page), every
 * value as its entry's index (RLE_DICTIONARY data pages). A chunk whose values are mostly distinct, or
 * whose dictionary would outgrow its page, stays PLAIN.
 */
import { viewOf } from './statistics.js';

export interface Dictionary {
  /** Entry of each non-null value, in value order. */
  indices: Uint32Array;
  /** PLAIN byte range of each entry's first occurrence (length prefix included for BYTE_ARRAY). */
  starts: number[];
  ends: number[];
  /** Sum of the entries' PLAIN sizes: the dictionary page body's size. */
  bytes: number;
}

const MAX_DICTIONARY_ENTRIES = 1 << 20;
/**
 * After this many values the chunk's final distinct count is forecast from the sample (see
 * `forecastDistinct`), and a chunk forecast past MAX_DISTINCT_RATIO gives up early: hashing every value
 * of an id or a timestamp column only to find it unique would cost as much as the rest of its encoding.
 */
const SAMPLE_VALUES = 4096;
/** A dictionary of more entries than this share of the values saves too little to be worth it. */
const MAX_DISTINCT_RATIO = 0.75;
const INITIAL_SLOTS = 1 << 12;

/**
 * The dictionary of `count` PLAIN values in `bytes` (each `width` bytes, or length-prefixed when `width`
 * is 0), or undefined when the chunk should stay PLAIN. Values are equal when their PLAIN bytes are
 * (so 0.0 and -0.0, or two NaN payloads, are distinct entries, as a reader would see them). The table is
 * open addressing over hashes of the bytes themselves: no JS string or number per value, which a Map
 * keyed by values would allocate (and collect) for every row.
 */
export function buildDictionary(
  bytes: Buffer,
  count: number,
  width: number,
  limitBytes: number,
): Dictionary | undefined {
  if (count === 0) return undefined;
  const indices = new Uint32Array(count);
  const starts: number[] = [];
  const ends: number[] = [];
  const hashes: number[] = [];
  let slots: Int32Array = new Int32Array(INITIAL_SLOTS); // entry + 1; 0 is an empty slot
  let mask = INITIAL_SLOTS - 1;
  const view = viewOf(bytes);
  let dictBytes = 0;
  let p = 0;
  for (let k = 0; k < count; k++) {
    const start = p;
    let hash: number;
    if (width === 8) {
      p += 8;
      hash = mix(Math.imul(view.getInt32(start, true), 0x9e3779b1) ^ view.getInt32(start + 4, true));
    } else if (width === 4) {
      p += 4;
      hash = mix(view.getInt32(start, true));
    } else {
      p = width === 0 ? p + 4 + view.getUint32(p, true) : p + width;
      hash = hashRange(bytes, view, start, p);
    }
    let slot = hash & mask;
    let entry = -1;
    for (let taken = slots[slot]!; taken !== 0; taken = slots[slot]!) {
      const candidate = taken - 1;
      if (
        hashes[candidate] === hash &&
        equalRanges(bytes, view, starts[candidate]!, ends[candidate]!, start, p)
      ) {
        entry = candidate;
        break;
      }
      slot = (slot + 1) & mask;
    }
    if (entry < 0) {
      entry = starts.length;
      starts.push(start);
      ends.push(p);
      hashes.push(hash);
      slots[slot] = entry + 1;
      dictBytes += p - start;
      if (dictBytes > limitBytes || entry >= MAX_DICTIONARY_ENTRIES) return undefined;
      if (2 * starts.length > slots.length) {
        slots = rehash(hashes, slots.length * 2);
        mask = slots.length - 1;
      }
    }
    indices[k] = entry;
    if (
      k === SAMPLE_VALUES - 1 &&
      count > 2 * SAMPLE_VALUES &&
      forecastDistinct(SAMPLE_VALUES, starts.length, count) > count * MAX_DISTINCT_RATIO
    ) {
      return undefined;
    }
  }
  if (starts.length > count * MAX_DISTINCT_RATIO) return undefined;
  return { indices, starts, ends, bytes: dictBytes };
}

/** The dictionary page body: the entries' PLAIN bytes, in entry order. */
export function dictionaryBody(bytes: Buffer, dictionary: Dictionary): Uint8Array {
  const body = Buffer.allocUnsafe(dictionary.bytes);
  let pos = 0;
  for (let e = 0; e < dictionary.starts.length; e++) {
    pos += bytes.copy(body, pos, dictionary.starts[e]!, dictionary.ends[e]!);
  }
  return body;
}

/**
 * The distinct values expected among `total` values when the first `sampled` held `distinct`, reading
 * the sample as draws from a pool of N equally likely values: N solves N·(1 − e^(−sampled/N)) = distinct
 * (the birthday estimate), and the forecast is N·(1 − e^(−total/N)). So a sample of 4096 with 3,600
 * distinct (a pool of about 20,000: customers, products) keeps its dictionary over 200,000 rows, where
 * a cut at a fixed share of the sample would not; an all-distinct sample forecasts `total`.
 */
export function forecastDistinct(sampled: number, distinct: number, total: number): number {
  if (distinct >= sampled) return total;
  const seen = (pool: number) => pool * -Math.expm1(-sampled / pool);
  // seen() grows with the pool; find it between `distinct` and a bound that sees more than `distinct`.
  let low = distinct;
  let high = distinct * 2;
  while (seen(high) < distinct) high *= 2;
  for (let i = 0; i < 40 && high - low > 0.5; i++) {
    const middle = (low + high) / 2;
    if (seen(middle) < distinct) low = middle;
    else high = middle;
  }
  return Math.min(total, high * -Math.expm1(-total / high));
}

function rehash(hashes: readonly number[], size: number): Int32Array {
  const slots = new Int32Array(size);
  const mask = size - 1;
  for (let entry = 0; entry < hashes.length; entry++) {
    let slot = hashes[entry]! & mask;
    while (slots[slot] !== 0) slot = (slot + 1) & mask;
    slots[slot] = entry + 1;
  }
  return slots;
}

/**
 * FNV-1a over the bytes, four at a time (a BYTE_ARRAY value is hashed once per row: a word per step
 * is four times fewer steps), then mixed so the low bits (the slot) depend on every byte.
 */
function hashRange(bytes: Buffer, view: DataView, start: number, end: number): number {
  let h = 0x811c9dc5;
  let i = start;
  for (const words = end - 3; i < words; i += 4) h = Math.imul(h ^ view.getInt32(i, true), 0x01000193);
  for (; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return mix(h);
}

/** murmur3's 32-bit finaliser. */
function mix(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function equalRanges(
  bytes: Buffer,
  view: DataView,
  aStart: number,
  aEnd: number,
  bStart: number,
  bEnd: number,
): boolean {
  const n = aEnd - aStart;
  if (n !== bEnd - bStart) return false;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    if (view.getInt32(aStart + i, true) !== view.getInt32(bStart + i, true)) return false;
  }
  for (; i < n; i++) {
    if (bytes[aStart + i] !== bytes[bStart + i]) return false;
  }
  return true;
}
