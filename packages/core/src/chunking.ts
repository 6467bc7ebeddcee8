import { DEFAULT_CHUNK_SIZE } from './protocol.js';

/**
 * Re-cuts a byte stream of arbitrary pieces into chunks of exactly `chunkSize` bytes (the last
 * may be shorter). Whole chunks that lie inside one piece are yielded as views of it, without a
 * copy; only a chunk that straddles pieces is assembled, each byte copied once. A piece's memory
 * must therefore not be reused by its producer once passed (Parquet row groups and fs reads are
 * fresh buffers).
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
    let offset = 0;
    while (offset < piece.length) {
      if (filled === 0 && piece.length - offset >= chunkSize) {
        // On a boundary with a whole chunk ahead: hand out a view (one row group of a Parquet file
        // is many chunks, so nearly every chunk of a file takes this path).
        yield offset === 0 && piece.length === chunkSize ? piece : piece.subarray(offset, offset + chunkSize);
        offset += chunkSize;
        continue;
      }
      // The buffer is filled completely before it is yielded (or cut to `filled` at the end), so
      // it needs no zeroing.
      current ??= Buffer.allocUnsafeSlow(chunkSize);
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
