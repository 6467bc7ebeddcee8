import { DEFAULT_CHUNK_SIZE, rechunk } from '@backhaul/core';
import { describe, expect, it } from 'vitest';

/** A deterministic PRNG (mulberry32), so a failure reproduces with the same pieces. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function bytes(length: number, next: () => number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
  return out;
}

/** Cuts `input` into pieces of random sizes in [0, maxPiece], empty pieces included. */
function cut(input: Uint8Array, maxPiece: number, next: () => number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let offset = 0;
  while (offset < input.length) {
    const size = Math.min(Math.floor(next() * (maxPiece + 1)), input.length - offset);
    pieces.push(input.subarray(offset, offset + size));
    offset += size;
  }
  return pieces;
}

async function* asAsync(pieces: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const piece of pieces) yield piece;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  // Copy each chunk as it arrives: a later chunk must not overwrite one already handed out.
  for await (const chunk of source) chunks.push(chunk.slice());
  return chunks;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

describe('§6.1 chunks are exactly chunkSize bytes, only the last may be shorter, and cover the file in order', () => {
  it('many random piece sizes, smaller and larger than a chunk', async () => {
    const next = random(0xbac4);
    for (const [chunkSize, length, maxPiece] of [
      [1, 37, 5],
      [7, 1_000, 3],
      [7, 1_000, 40],
      [1024, 100_000, 3_000],
      [1024, 10 * 1024, 1024],
      [4096, 4096 * 5 + 1, 9_000],
    ] as const) {
      for (let round = 0; round < 5; round++) {
        const input = bytes(length, next);
        const chunks = await collect(rechunk(asAsync(cut(input, maxPiece, next)), chunkSize));
        expect(chunks).toHaveLength(Math.ceil(length / chunkSize));
        for (const chunk of chunks.slice(0, -1)) expect(chunk.length).toBe(chunkSize);
        const last = chunks.at(-1)!;
        expect(last.length).toBe(length % chunkSize || chunkSize);
        expect(Buffer.from(concat(chunks)).equals(Buffer.from(input))).toBe(true);
        // Chunk i covers bytes [i * chunkSize, (i + 1) * chunkSize).
        const i = Math.floor(next() * chunks.length);
        expect(
          Buffer.from(chunks[i]!).equals(Buffer.from(input.subarray(i * chunkSize, (i + 1) * chunkSize))),
        ).toBe(true);
      }
    }
  });

  it('chunks handed out are not overwritten while later ones are filled', async () => {
    const input = bytes(10_000, random(7));
    const held: Uint8Array[] = [];
    // Hold references, no copies: a reused buffer would show up as changed bytes.
    for await (const chunk of rechunk(cut(input, 300, random(8)), 1000)) held.push(chunk);
    expect(Buffer.from(concat(held)).equals(Buffer.from(input))).toBe(true);
  });

  it('the default chunk size is 512 KiB', async () => {
    expect(DEFAULT_CHUNK_SIZE).toBe(524_288);
    const input = bytes(DEFAULT_CHUNK_SIZE * 2 + 10, random(3));
    const chunks = await collect(rechunk([input.subarray(0, 100_000), input.subarray(100_000)]));
    expect(chunks.map((c) => c.length)).toEqual([524_288, 524_288, 10]);
  });

  it('empty input and empty pieces yield no chunk', async () => {
    expect(await collect(rechunk([], 8))).toEqual([]);
    expect(await collect(rechunk([new Uint8Array(0), new Uint8Array(0)], 8))).toEqual([]);
  });

  it('refuses a chunk size that is not a positive integer', async () => {
    for (const size of [0, -1, 1.5, Number.NaN]) {
      await expect(collect(rechunk([new Uint8Array(1)], size))).rejects.toThrow(RangeError);
    }
  });
});

describe('a piece exactly one chunk long on a boundary passes through without a copy', () => {
  it('whole chunks inside a large piece are views of its memory; only a chunk across pieces is copied', async () => {
    const big = new Uint8Array(16 * 3 + 5).map((_, i) => i);
    const tail = new Uint8Array(20).map((_, i) => 200 + i);
    const chunks: Uint8Array[] = [];
    for await (const chunk of rechunk([big, tail], 16)) chunks.push(chunk);
    expect(chunks.map((c) => c.length)).toEqual([16, 16, 16, 16, 9]);
    for (const [i, chunk] of chunks.slice(0, 3).entries()) {
      expect(chunk.buffer).toBe(big.buffer);
      expect(chunk.byteOffset).toBe(i * 16);
    }
    expect(chunks[3]!.buffer).not.toBe(big.buffer);
    expect([...chunks[3]!]).toEqual([48, 49, 50, 51, 52, ...[...tail.subarray(0, 11)]]);
    expect([...chunks[4]!]).toEqual([...tail.subarray(11)]);
  });

  it('yields the same Uint8Array objects', async () => {
    const pieces = [new Uint8Array(16).fill(1), new Uint8Array(16).fill(2), new Uint8Array(16).fill(3)];
    const chunks: Uint8Array[] = [];
    for await (const chunk of rechunk(pieces, 16)) chunks.push(chunk);
    expect(chunks).toHaveLength(3);
    for (const [i, chunk] of chunks.entries()) expect(chunk).toBe(pieces[i]);
  });

  it('off a boundary, an exact-size piece is split and copied, and the bytes still line up', async () => {
    const pieces = [new Uint8Array(4).fill(9), new Uint8Array(16).fill(1), new Uint8Array(12).fill(2)];
    const chunks = await collect(rechunk(pieces, 16));
    expect(chunks.map((c) => c.length)).toEqual([16, 16]);
    expect([...chunks[0]!]).toEqual([...Array(4).fill(9), ...Array(12).fill(1)]);
    expect([...chunks[1]!]).toEqual([...Array(4).fill(1), ...Array(12).fill(2)]);
  });
});
