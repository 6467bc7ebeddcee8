import { DEFAULT_CHUNK_SIZE } from './protocol.js';

/**
 * Re-cuts a byte stream of arbitrary pieces into chunks of exactly `chunkSize` bytes (the last
 * may be shorter). Pieces are copied once into the chunk being filled; a piece that lines up
 * with a chunk boundary and is exactly one chunk long is passed through without a copy.
 */
export async function* rechunk(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  chunkSize: number = DEFAULT_CHUNK_SIZE,
): AsyncGenerator<Uint8Array> {
  if (!Number.isInteger(chunkSize) || chunkSize <= 0)
    throw new RangeError('chunkSize must be a positive integer');
  let current: Uint8Array | undefined;
  let filled = 0;
  for await (const piece of source) {
    if (filled === 0 && piece.length === chunkSize) {
      yield piece;
      continue;
    }
    let offset = 0;
    while (offset < piece.length) {
      current ??= new Uint8Array(chunkSize);
      const take = Math.min(chunkSize - filled, piece.length - offset);
      current.set(piece.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === chunkSize) {
        yield current;
        current = undefined;
        filled = 0;
      }
    }
  }
  if (current && filled > 0) yield current.subarray(0, filled);
}
