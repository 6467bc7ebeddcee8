import { describe, expect, it } from 'vitest';
import type { Codec } from '../codec.js';
import { expectBackhaulError } from './expect-backhaul-error.js';

export interface CodecConformanceOptions {
  /**
   * Whether `decode` can tell a valid frame from garbage. True for every real compressor; false
   * for `identity`, where every byte string is a valid encoding of itself.
   */
  validatesFrames?: boolean;
}

const chunkSize = 512 * 1024;

/**
 * The rules every `Codec` follows, from docs/protocol.md §6.1–6.2. Call it once from the codec's
 * own test file: `runCodecConformance('zstd', () => createZstdCodec())`.
 */
export function runCodecConformance(
  name: string,
  createCodec: () => Codec | Promise<Codec>,
  options: CodecConformanceOptions = {},
): void {
  const validatesFrames = options.validatesFrames ?? true;

  describe(`Codec conformance: ${name}`, () => {
    it('declares specificationVersion v1 and a header name', async () => {
      const codec = await createCodec();
      expect(codec.specificationVersion).toBe('v1');
      expect(codec.name).toMatch(/^[a-z0-9-]+$/);
    });

    const inputs: Array<[string, () => Uint8Array]> = [
      ['an empty input', () => new Uint8Array(0)],
      ['a 1-byte input', () => Uint8Array.of(0x5a)],
      ['512 KiB of incompressible bytes', () => pseudoRandomBytes(chunkSize, 1)],
      ['512 KiB of repetitive text', () => repetitiveText(chunkSize)],
    ];
    for (const [label, makeInput] of inputs) {
      it(`round-trips ${label} byte-exact`, async () => {
        const codec = await createCodec();
        const raw = makeInput();
        const pristine = raw.slice();
        const encoded = await codec.encode(raw);
        const decoded = await codec.decode(encoded, chunkSize);
        expect(decoded.length).toBe(raw.length);
        expect(equalBytes(decoded, pristine)).toBe(true);
        // Encoding must not scribble on the caller's buffer: the gateway hashes it afterwards.
        expect(equalBytes(raw, pristine)).toBe(true);
      });
    }

    // §6.2: "a decoded length above chunkSize: 413 payload-too-large, decided before the output is allocated".
    it('refuses with payload-too-large when the output would exceed maxOutputBytes', async () => {
      const codec = await createCodec();
      const encoded = await codec.encode(new Uint8Array(4 * chunkSize));
      await expectBackhaulError(codec.decode(encoded, chunkSize), 'payload-too-large');
      await expectBackhaulError(codec.decode(encoded, 4 * chunkSize - 1), 'payload-too-large');
    });

    it('accepts output exactly equal to maxOutputBytes', async () => {
      const codec = await createCodec();
      const raw = repetitiveText(4 * chunkSize);
      const decoded = await codec.decode(await codec.encode(raw), raw.length);
      expect(equalBytes(decoded, raw)).toBe(true);
    });

    if (validatesFrames) {
      it('rejects garbage bytes with corrupt-data', async () => {
        const codec = await createCodec();
        await expectBackhaulError(
          codec.decode(new TextEncoder().encode('this is not a frame of any codec'), chunkSize),
          'corrupt-data',
        );
        await expectBackhaulError(codec.decode(pseudoRandomBytes(4096, 7), chunkSize), 'corrupt-data');
      });

      it('rejects a truncated valid frame with corrupt-data', async () => {
        const codec = await createCodec();
        const encoded = await codec.encode(repetitiveText(64 * 1024));
        await expectBackhaulError(
          codec.decode(encoded.subarray(0, encoded.length - 3), chunkSize),
          'corrupt-data',
        );
        await expectBackhaulError(
          codec.decode(encoded.subarray(0, encoded.length >> 1), chunkSize),
          'corrupt-data',
        );
      });

      it('rejects an empty input with corrupt-data', async () => {
        const codec = await createCodec();
        await expectBackhaulError(codec.decode(new Uint8Array(0), chunkSize), 'corrupt-data');
      });
    }
  });
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Deterministic, so a failure reproduces; xorshift32 output does not compress. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** CSV-like rows, the shape of the data Backhaul actually carries. */
function repetitiveText(length: number): Uint8Array {
  const rows: string[] = [];
  let size = 0;
  for (let i = 0; size < length; i++) {
    const row = `${i},customer-${i % 97},${(i * 31) % 1000}.${i % 100},2024-01-${(i % 28) + 1}\n`;
    rows.push(row);
    size += row.length;
  }
  return new TextEncoder().encode(rows.join('')).subarray(0, length);
}
