import { expectBackhaulError, runCodecConformance } from '@backhaul/core/testing';
import { compressSync } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { createLz4Codec } from '../src/index.js';

runCodecConformance('lz4', () => createLz4Codec());

const cap = 512 * 1024;

describe('lz4: the wire format is the lz4-napi block with a 4-byte little-endian size prefix', () => {
  it('writes the decoded length first, and the same bytes as compressSync', async () => {
    const raw = new TextEncoder().encode('backhaul '.repeat(1000));
    const encoded = Buffer.from(await createLz4Codec().encode(raw));
    expect(encoded.readUInt32LE(0)).toBe(raw.length);
    expect(encoded.equals(compressSync(Buffer.from(raw)))).toBe(true);
  });
});

describe('lz4: decode refuses a bomb before allocating its output (§6.2)', () => {
  it('refuses 64 MiB of zeros under a 512 KiB cap quickly and without growing memory', async () => {
    const codec = createLz4Codec();
    const bomb = await codec.encode(new Uint8Array(64 * 1024 * 1024));
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    await expectBackhaulError(codec.decode(bomb, cap), 'payload-too-large');
    expect(performance.now() - started).toBeLessThan(500);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('rejects a prefix that lies low with corrupt-data, without decoding past it', async () => {
    const codec = createLz4Codec();
    const encoded = Buffer.from(await codec.encode(new Uint8Array(64 * 1024 * 1024)));
    encoded.writeUInt32LE(1_000, 0);
    const rssBefore = process.memoryUsage().rss;
    await expectBackhaulError(codec.decode(encoded, cap), 'corrupt-data');
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('rejects a prefix that lies high (within the cap) with corrupt-data', async () => {
    const codec = createLz4Codec();
    const encoded = Buffer.from(await codec.encode(new TextEncoder().encode('abcdefgh'.repeat(1000))));
    encoded.writeUInt32LE(8_010, 0);
    await expectBackhaulError(codec.decode(encoded, cap), 'corrupt-data');
  });

  it('rejects a prefix that no block of that length could reach as corrupt-data, not too large', async () => {
    const encoded = Buffer.alloc(100);
    encoded.writeUInt32LE(0xffffffff, 0);
    await expectBackhaulError(createLz4Codec().decode(encoded, cap), 'corrupt-data');
  });
});
