/**
 * Dictionary encoding of one column chunk: each distinct PLAIN value once (the dictionary page), every
 * value as its entry's index (RLE_DICTIONARY data pages). A chunk whose values are mostly distinct, or
 * whose dictionary would outgrow its page, stays PLAIN.
 */
import { compareRanges, viewOf } from './statistics.js';

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
/** After this many values, a chunk with more than SAMPLE_MAX_DISTINCT distinct ones gives up early. */
const SAMPLE_VALUES = 4096;
const SAMPLE_MAX_DISTINCT = 3072;
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
      hash = hashRange(bytes, start, p);
    }
    let slot = hash & mask;
    let entry = -1;
    for (let taken = slots[slot]!; taken !== 0; taken = slots[slot]!) {
      const candidate = taken - 1;
      if (hashes[candidate] === hash && equalRanges(bytes, starts[candidate]!, ends[candidate]!, start, p)) {
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
    if (k === SAMPLE_VALUES - 1 && count > 2 * SAMPLE_VALUES && starts.length > SAMPLE_MAX_DISTINCT) {
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

/** Rank of each BYTE_ARRAY entry in unsigned bytewise order, so a page's bounds are integer compares. */
export function rankEntries(bytes: Buffer, dictionary: Dictionary): Uint32Array {
  const { starts, ends } = dictionary;
  const order = Array.from(starts.keys()).sort((a, b) =>
    compareRanges(bytes, starts[a]! + 4, ends[a]!, starts[b]! + 4, ends[b]!),
  );
  const ranks = new Uint32Array(starts.length);
  order.forEach((entry, rank) => {
    ranks[entry] = rank;
  });
  return ranks;
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

/** FNV-1a over the bytes, then mixed so the low bits (the slot) depend on every byte. */
function hashRange(bytes: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
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

function equalRanges(bytes: Buffer, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false;
  for (let i = 0, n = aEnd - aStart; i < n; i++) {
    if (bytes[aStart + i] !== bytes[bStart + i]) return false;
  }
  return true;
}
