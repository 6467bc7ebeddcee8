import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ByteRange, ObjectStorage } from '../object-storage.js';
import { expectBackhaulError } from './expect-backhaul-error.js';

export interface ObjectStorageFixture {
  storage: ObjectStorage;
  cleanup?: () => Promise<void>;
}

/**
 * The rules every `ObjectStorage` follows. `createStorage` is called before each test and must
 * return an empty storage (a fresh directory, bucket or prefix); `cleanup` runs after it.
 */
export function runObjectStorageConformance(
  name: string,
  createStorage: () => Promise<ObjectStorageFixture>,
): void {
  describe(`ObjectStorage conformance: ${name}`, () => {
    let fixture: ObjectStorageFixture;
    let storage: ObjectStorage;

    beforeEach(async () => {
      fixture = await createStorage();
      storage = fixture.storage;
    });
    afterEach(async () => {
      await fixture.cleanup?.();
    });

    /** Three parts sized like the server sends them: all but the last at least minPartSize. */
    const partsFor = (target: ObjectStorage, seed: number): Uint8Array[] => {
      const partSize = Math.max(target.capabilities.minPartSize, 64 * 1024);
      return [patterned(partSize, seed), patterned(partSize, seed + 1), patterned(12_345, seed + 2)];
    };

    const put = async (key: string, parts: Uint8Array[]) => {
      const upload = await storage.beginUpload(key, { contentType: 'application/octet-stream' });
      for (const part of parts) await upload.writePart(part);
      return upload.complete();
    };

    it('declares specificationVersion v1 and sane capabilities', () => {
      expect(storage.specificationVersion).toBe('v1');
      expect(storage.name).toMatch(/^[a-z0-9-]+$/);
      expect(storage.capabilities.minPartSize).toBeGreaterThanOrEqual(1);
      expect(storage.capabilities.maxParts).toBeGreaterThanOrEqual(1);
      expect(typeof storage.presignGet === 'function').toBe(storage.capabilities.presignedUrls);
    });

    it('makes written parts, once completed, one object whose bytes are their concatenation', async () => {
      const parts = partsFor(storage, 1);
      const expected = concat(parts);
      const before = Date.now();
      const stored = await put('whole.bin', parts);
      expect(stored.key).toBe('whole.bin');
      expect(stored.size).toBe(expected.length);
      // Clocks of remote storages round to the second.
      expect(stored.createdAt).toBeGreaterThanOrEqual(before - 2_000);
      expect(stored.createdAt).toBeLessThanOrEqual(Date.now() + 2_000);

      const head = await storage.head('whole.bin');
      expect(head?.size).toBe(expected.length);
      expect(equalBytes(await readAll(storage, 'whole.bin'), expected)).toBe(true);
    });

    it('shows nothing before complete(): visibility is atomic', async () => {
      const parts = partsFor(storage, 2);
      const upload = await storage.beginUpload('pending.bin');
      await upload.writePart(parts[0]!);
      await upload.writePart(parts[1]!);
      expect(await storage.head('pending.bin')).toBeUndefined();
      await expectBackhaulError(storage.read('pending.bin'), 'not-found');
      await upload.writePart(parts[2]!);
      await upload.complete();
      expect((await storage.head('pending.bin'))?.size).toBe(concat(parts).length);
    });

    it('leaves nothing after abort(), and abort() is idempotent', async () => {
      const upload = await storage.beginUpload('aborted.bin');
      await upload.writePart(partsFor(storage, 3)[0]!);
      await upload.abort();
      await upload.abort();
      expect(await storage.head('aborted.bin')).toBeUndefined();
      await expectBackhaulError(storage.read('aborted.bin'), 'not-found');
      // The key is free for a later upload.
      await put('aborted.bin', [Uint8Array.of(1, 2, 3)]);
      expect((await storage.head('aborted.bin'))?.size).toBe(3);
    });

    it('reads a byte range: start inclusive, end exclusive', async () => {
      const parts = partsFor(storage, 4);
      const whole = concat(parts);
      await put('ranged.bin', parts);
      const boundary = parts[0]!.length;
      const ranges: ByteRange[] = [
        { start: 0, end: 1 },
        { start: 10, end: 20 },
        { start: boundary - 5, end: boundary + 5 },
        { start: whole.length - 7 },
        { start: 0, end: whole.length },
      ];
      for (const range of ranges) {
        const bytes = await readAll(storage, 'ranged.bin', range);
        expect(equalBytes(bytes, whole.subarray(range.start, range.end ?? whole.length))).toBe(true);
      }
    });

    it('removes an object on delete(), and deleting a missing key is a no-op', async () => {
      await put('doomed.bin', [Uint8Array.of(9)]);
      await storage.delete('doomed.bin');
      expect(await storage.head('doomed.bin')).toBeUndefined();
      await expectBackhaulError(storage.read('doomed.bin'), 'not-found');
      await storage.delete('doomed.bin');
      await storage.delete('never-existed.bin');
    });

    it('answers a missing key with head() undefined and read() rejecting not-found', async () => {
      expect(await storage.head('missing/object.bin')).toBeUndefined();
      await expectBackhaulError(storage.read('missing/object.bin'), 'not-found');
      await expectBackhaulError(storage.read('missing/object.bin', { start: 0, end: 1 }), 'not-found');
    });

    it('sweep(createdBefore) deletes older objects, keeps newer ones and returns the count', async () => {
      await put('old/a.bin', [Uint8Array.of(1)]);
      await put('old/b.bin', [Uint8Array.of(2)]);
      // Remote storages record creation to the second; leave a clear gap.
      await sleep(1_100);
      await put('new/c.bin', [Uint8Array.of(3)]);
      const cutoff = (await storage.head('new/c.bin'))!.createdAt;

      expect(await storage.sweep(cutoff)).toBe(2);
      expect(await storage.head('old/a.bin')).toBeUndefined();
      expect(await storage.head('old/b.bin')).toBeUndefined();
      expect((await storage.head('new/c.bin'))?.size).toBe(1);
      expect(await storage.sweep(cutoff)).toBe(0);
    });

    it("accepts keys with slashes like 'results/gw-1/abc.parquet'", async () => {
      const key = 'results/gw-1/abc.parquet';
      const stored = await put(key, [new TextEncoder().encode('PAR1')]);
      expect(stored.key).toBe(key);
      expect(new TextDecoder().decode(await readAll(storage, key))).toBe('PAR1');
      await storage.delete(key);
      expect(await storage.head(key)).toBeUndefined();
    });

    it('replaces an object written twice atomically: readers see the old bytes until complete()', async () => {
      const first = partsFor(storage, 5);
      const second = partsFor(storage, 9).slice(1);
      await put('twice.bin', first);

      const upload = await storage.beginUpload('twice.bin');
      for (const part of second) await upload.writePart(part);
      expect((await storage.head('twice.bin'))?.size).toBe(concat(first).length);
      expect(equalBytes(await readAll(storage, 'twice.bin'), concat(first))).toBe(true);

      await upload.complete();
      expect((await storage.head('twice.bin'))?.size).toBe(concat(second).length);
      expect(equalBytes(await readAll(storage, 'twice.bin'), concat(second))).toBe(true);
    });
  });
}

async function readAll(storage: ObjectStorage, key: string, range?: ByteRange): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for await (const piece of await storage.read(key, range)) pieces.push(piece);
  return concat(pieces);
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Bytes that differ per seed and per offset, so a misplaced or repeated part shows. */
function patterned(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 17 + (i >>> 8)) & 0xff;
  return bytes;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
