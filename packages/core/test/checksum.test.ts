import { createChecksummer } from '@backhaul/core';
import { describe, expect, it } from 'vitest';

/**
 * A second, independent xxhash64: a plain BigInt transcription of the algorithm in the xxHash
 * specification (doc/xxhash_spec.md), to cross-check the WebAssembly one on inputs that take
 * every path (empty, < 4, < 8, < 32 and >= 32 bytes with every tail length).
 */
function referenceXxh64(input: Uint8Array, seed = 0n): bigint {
  const mask = (1n << 64n) - 1n;
  const p1 = 0x9e3779b185ebca87n;
  const p2 = 0xc2b2ae3d27d4eb4fn;
  const p3 = 0x165667b19e3779f9n;
  const p4 = 0x85ebca77c2b2ae63n;
  const p5 = 0x27d4eb2f165667c5n;
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & mask;
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  const u64 = (at: number) => view.getBigUint64(at, true);
  const u32 = (at: number) => BigInt(view.getUint32(at, true));
  const round = (acc: bigint, lane: bigint) => (rotl((acc + lane * p2) & mask, 31n) * p1) & mask;
  const merge = (acc: bigint, value: bigint) => ((acc ^ round(0n, value)) * p1 + p4) & mask;

  const length = input.length;
  let offset = 0;
  let acc: bigint;
  if (length >= 32) {
    let v1 = (seed + p1 + p2) & mask;
    let v2 = (seed + p2) & mask;
    let v3 = seed;
    let v4 = (seed - p1) & mask;
    for (; offset + 32 <= length; offset += 32) {
      v1 = round(v1, u64(offset));
      v2 = round(v2, u64(offset + 8));
      v3 = round(v3, u64(offset + 16));
      v4 = round(v4, u64(offset + 24));
    }
    acc = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & mask;
    acc = merge(merge(merge(merge(acc, v1), v2), v3), v4);
  } else {
    acc = (seed + p5) & mask;
  }
  acc = (acc + BigInt(length)) & mask;
  for (; offset + 8 <= length; offset += 8) {
    acc = (rotl(acc ^ round(0n, u64(offset)), 27n) * p1 + p4) & mask;
  }
  if (offset + 4 <= length) {
    acc = (rotl(acc ^ ((u32(offset) * p1) & mask), 23n) * p2 + p3) & mask;
    offset += 4;
  }
  for (; offset < length; offset++) {
    acc = (rotl(acc ^ ((BigInt(input[offset]!) * p5) & mask), 11n) * p1) & mask;
  }
  acc ^= acc >> 33n;
  acc = (acc * p2) & mask;
  acc ^= acc >> 29n;
  acc = (acc * p3) & mask;
  acc ^= acc >> 32n;
  return acc;
}

const hex = (value: bigint) => value.toString(16).padStart(16, '0');
const text = (value: string) => new TextEncoder().encode(value);

describe('§6.1 checksums are xxhash64, seed 0, as 16 lower-case hex digits', () => {
  // Published vectors: empty and 'ABC'/'xxhash' from ClickHouse's xxHash64 tests
  // (00803_xxhash.sql), 'a'/'abc' from ifduyue/nim-xxhash (15154266338359012955, 4952883123889572249).
  it.each([
    ['', 'ef46db3751d8e999'],
    ['a', 'd24ec4f1a98c6e5b'],
    ['abc', '44bc2cf5ad770999'],
    ['ABC', 'e66ae7354fcfee98'],
    ['xxhash', '32dd38952c4bc720'],
  ])('xxh64(%j) = %s', async (input, expected) => {
    const checksummer = await createChecksummer();
    expect(checksummer.digest(text(input))).toBe(expected);
    expect(hex(referenceXxh64(text(input)))).toBe(expected);
  });

  it('agrees with an independent implementation on every length 0..100 and on a large buffer', async () => {
    const checksummer = await createChecksummer();
    const data = new Uint8Array(70_001);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    for (let length = 0; length <= 100; length++) {
      const slice = data.subarray(3, 3 + length);
      expect(checksummer.digest(slice), `length ${length}`).toBe(hex(referenceXxh64(slice)));
    }
    expect(checksummer.digest(data)).toBe(hex(referenceXxh64(data)));
  });

  it('leading zeros are kept: always 16 digits', async () => {
    const checksummer = await createChecksummer();
    // Search a few inputs for a hash below 2^60 (first hex digit 0); about 1 in 16 has one.
    const small = Array.from({ length: 200 }, (_, i) => text(`k${i}`)).find(
      (b) => referenceXxh64(b) < 1n << 60n,
    )!;
    expect(small).toBeDefined();
    const digest = checksummer.digest(small);
    expect(digest).toMatch(/^0[0-9a-f]{15}$/);
  });
});

describe('§6.4 a streaming digest over a file fed in pieces equals the one-shot digest', () => {
  it('for many ways to cut the same bytes', async () => {
    const checksummer = await createChecksummer();
    const data = new Uint8Array(1_000_003);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >>> 9)) & 0xff;
    const oneShot = checksummer.digest(data);
    for (const piece of [1_000_003, 524_288, 65_536, 4_097, 31, 1]) {
      const hasher = checksummer.stream();
      const limit = piece === 1 ? 10_000 : data.length;
      const bytes = data.subarray(0, limit);
      for (let offset = 0; offset < bytes.length; offset += piece)
        hasher.update(bytes.subarray(offset, offset + piece));
      expect(hasher.digest(), `pieces of ${piece}`).toBe(
        limit === data.length ? oneShot : checksummer.digest(bytes),
      );
    }
  });

  it('an empty stream digests like empty input, and two streams do not share state', async () => {
    const checksummer = await createChecksummer();
    expect(checksummer.stream().digest()).toBe('ef46db3751d8e999');
    const a = checksummer.stream();
    const b = checksummer.stream();
    a.update(text('a'));
    b.update(text('ab'));
    a.update(text('bc'));
    expect(a.digest()).toBe('44bc2cf5ad770999');
    expect(b.digest()).toBe(checksummer.digest(text('ab')));
  });
});
