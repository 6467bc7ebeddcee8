import { describe, expect, it } from 'vitest';
import { type ParquetPageCompressor, ParquetWriter } from '../src/index.js';
import { concat, metadataOf, pageHeaders, read } from './read-back.js';

/**
 * A valid (if useless) Snappy encoder: the uncompressed length, then the input as literal elements of at
 * most 64 KiB. Enough to prove the writer's compressed-page path against hyparquet's Snappy decoder.
 */
const literalSnappy: ParquetPageCompressor = {
  codec: 'snappy',
  compress(page) {
    const out: number[] = [];
    for (let v = page.length; ; v = Math.floor(v / 128)) {
      if (v < 128) {
        out.push(v);
        break;
      }
      out.push((v % 128) | 128);
    }
    for (let i = 0; i < page.length; i += 65_536) {
      const length = Math.min(65_536, page.length - i);
      out.push(61 << 2, (length - 1) & 0xff, (length - 1) >> 8); // literal, 2-byte length
      for (let k = 0; k < length; k++) out.push(page[i + k]!);
    }
    return Uint8Array.from(out);
  },
};

describe('page compression hook', () => {
  it('writes compressed pages with both sizes and the codec recorded', async () => {
    const writer = new ParquetWriter(
      [
        { name: 'id', type: 'int32', nullable: false },
        { name: 's', type: 'string' },
      ],
      { compression: literalSnappy, rowGroupSize: 300, pageSize: 512 },
    );
    const rows = Array.from({ length: 1000 }, (_, i) => [i, i % 9 === 0 ? null : `text ${i}`]);
    const file = concat([...writer.write(rows), ...writer.finish()]);
    const chunk = metadataOf(file).row_groups[0]?.columns[1]?.meta_data;
    expect(chunk?.codec).toBe('SNAPPY');
    expect(chunk!.total_compressed_size).toBeGreaterThan(chunk!.total_uncompressed_size); // literals only add bytes
    for (const header of pageHeaders(file).get('s')!) {
      expect(header.compressed_page_size).toBeGreaterThan(header.uncompressed_page_size);
    }
    const out = await read(file);
    expect(out.map((r) => [r.id, r.s])).toEqual(rows);
  });
});

describe('an asynchronous codec that fails', () => {
  it('fails the write that flushed the row group, and the writer stays failed', async () => {
    let calls = 0;
    const failing: ParquetPageCompressor = {
      codec: 'zstd',
      async compressAsync(page) {
        calls++;
        if (calls === 3) throw new Error('codec out of memory');
        return page;
      },
    };
    const writer = new ParquetWriter(
      [
        { name: 'id', type: 'int32', nullable: false },
        { name: 's', type: 'string' },
      ],
      { compression: failing, rowGroupSize: 100 },
    );
    const rows = Array.from({ length: 250 }, (_, i) => [i, `text ${i % 7}`]);
    await expect(writer.writeAsync(rows)).rejects.toThrow('codec out of memory');
    await expect(writer.finishAsync()).rejects.toThrow(/failed earlier/);
  });
});
