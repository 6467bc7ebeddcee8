import { expectBackhaulError, runCodecConformance } from '@backhaul/core/testing';
import { describe, expect, it } from 'vitest';
import { createZstdCodec } from '../src/index.js';
import { readFrameHeader } from '../src/zstd-frame.js';

runCodecConformance('zstd', () => createZstdCodec());

const cap = 512 * 1024;

function csvRows(count: number): Uint8Array {
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
  const rows: string[] = [];
  for (let i = 0; i < count; i++) {
    rows.push(`${i},${words[i % 8]} ${words[(i * 3) % 8]},${(i * 7919) % 10_007},${i % 2 === 0}\n`);
  }
  return new TextEncoder().encode(rows.join(''));
}

describe('zstd: the configured level is the level used', () => {
  it('level 1 and level 19 write different frames that decode to the same bytes', async () => {
    const raw = csvRows(8_000);
    const fast = await createZstdCodec({ level: 1 }).encode(raw);
    const small = await createZstdCodec({ level: 19 }).encode(raw);
    expect(small.length).toBeLessThan(fast.length);
    // Window_Descriptor (RFC 8878 §3.1.1.1.2) follows libzstd's parameter table for the level:
    // windowLog 19 at level 1, 23 at level 19. The wrapper's level-3 default would give 21.
    const windowLog = (frame: Uint8Array) => 10 + (frame[5]! >>> 3);
    expect(windowLog(fast)).toBe(19);
    expect(windowLog(small)).toBe(23);
    const codec = createZstdCodec();
    expect(Buffer.from(await codec.decode(fast, raw.length)).equals(raw)).toBe(true);
    expect(Buffer.from(await codec.decode(small, raw.length)).equals(raw)).toBe(true);
  });

  it('defaults to level 1', async () => {
    const raw = csvRows(8_000);
    const byDefault = await createZstdCodec().encode(raw);
    const levelOne = await createZstdCodec({ level: 1 }).encode(raw);
    expect(Buffer.from(byDefault).equals(levelOne)).toBe(true);
  });

  it('refuses a level outside libzstd range at construction', () => {
    expect(() => createZstdCodec({ level: 23 })).toThrow(RangeError);
    expect(() => createZstdCodec({ level: 1.5 })).toThrow(RangeError);
  });
});

describe('zstd: every frame it writes declares Frame_Content_Size', () => {
  for (const size of [0, 1, 255, 256, 65_791, 65_792, cap]) {
    it(`declares ${size} bytes`, async () => {
      const frame = await createZstdCodec().encode(new Uint8Array(size).fill(7));
      expect(readFrameHeader(frame).contentSize).toBe(BigInt(size));
      expect((await createZstdCodec().decode(frame, size)).length).toBe(size);
    });
  }
});

describe('zstd: decode refuses a bomb before allocating its output (§6.2)', () => {
  it('refuses 64 MiB of zeros under a 512 KiB cap quickly and without growing memory', async () => {
    const codec = createZstdCodec();
    const bomb = await codec.encode(new Uint8Array(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(64 * 1024);

    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    await expectBackhaulError(codec.decode(bomb, cap), 'payload-too-large');
    expect(performance.now() - started).toBeLessThan(500);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a hand-made header claiming 1 TiB', async () => {
    // Magic, descriptor (FCS_Flag 3: 8-byte size; single segment), the size, then an empty raw last block.
    const frame = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0x01, 0, 0]);
    expect(readFrameHeader(frame).contentSize).toBe(2n ** 40n);
    await expectBackhaulError(createZstdCodec().decode(frame, cap), 'payload-too-large');
  });

  it('refuses a frame that does not declare its content size', async () => {
    const raw = csvRows(2_000);
    const frame = Buffer.from(await createZstdCodec().encode(raw));
    const header = readFrameHeader(frame);
    // Cut the 2- or 4-byte size field back out and clear FCS_Flag, as a streaming compressor writes it.
    const fieldLength = header.headerLength - header.contentSizeOffset;
    const stripped = Buffer.concat([
      frame.subarray(0, header.contentSizeOffset),
      frame.subarray(header.headerLength),
    ]);
    stripped[4] = stripped[4]! & 0x3f;
    expect(fieldLength).toBeGreaterThan(0);
    expect(readFrameHeader(stripped).contentSize).toBeUndefined();
    await expectBackhaulError(createZstdCodec().decode(stripped, cap), 'payload-too-large');
  });

  it('rejects a header that lies low about the content size with corrupt-data, fast', async () => {
    const codec = createZstdCodec();
    const honest = Buffer.from(await codec.encode(new Uint8Array(64 * 1024 * 1024)));
    const header = readFrameHeader(honest);
    expect(header.headerLength - header.contentSizeOffset).toBe(4);
    honest.writeUInt32LE(1_000, header.contentSizeOffset);
    const rssBefore = process.memoryUsage().rss;
    await expectBackhaulError(codec.decode(honest, cap), 'corrupt-data');
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('rejects two concatenated frames, whose second the header does not bound', async () => {
    const codec = createZstdCodec();
    const frame = await codec.encode(csvRows(100));
    await expectBackhaulError(codec.decode(Buffer.concat([frame, frame]), cap), 'corrupt-data');
  });

  it('rejects a skippable frame, before or after the data', async () => {
    const codec = createZstdCodec();
    const frame = await codec.encode(csvRows(100));
    const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
    await expectBackhaulError(codec.decode(Buffer.concat([skippable, frame]), cap), 'corrupt-data');
    await expectBackhaulError(codec.decode(Buffer.concat([frame, skippable]), cap), 'corrupt-data');
  });

  it('rejects a frame that needs a dictionary', async () => {
    const frame = Buffer.from(await createZstdCodec().encode(new Uint8Array(0)));
    // The empty frame is single-segment with a 1-byte size; give it a 1-byte Dictionary_ID.
    const withDictionary = Buffer.concat([frame.subarray(0, 5), Buffer.from([9]), frame.subarray(5)]);
    withDictionary[4] = withDictionary[4]! | 0x01;
    expect(readFrameHeader(withDictionary).dictionaryId).toBe(9);
    await expectBackhaulError(createZstdCodec().decode(withDictionary, cap), 'corrupt-data');
  });
});
