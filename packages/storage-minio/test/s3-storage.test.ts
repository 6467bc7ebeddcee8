import { randomUUID } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { BackhaulError, type ObjectStorage } from '@backhaul/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createS3Storage,
  type S3Storage,
  type S3StorageOptions,
  s3MaxParts,
  s3MinPartSize,
} from '../src/index.js';
import { type RecorderOptions, recordRequests } from './request-recorder.js';
import { endpoints, type S3Endpoint, startS3rver } from './s3-endpoints.js';

const KiB = 1024;
const MiB = 1024 * KiB;

for (const { label, connect } of endpoints) {
  describe.skipIf(!connect)(`S3 storage on ${label}`, () => {
    let endpoint: S3Endpoint;
    const opened: { storage: S3Storage; client: S3Client }[] = [];
    beforeAll(async () => {
      endpoint = await connect!();
    });
    afterEach(async () => {
      for (const { storage, client } of opened.splice(0)) {
        await storage.sweep(Number.MAX_SAFE_INTEGER);
        client.destroy();
      }
    });
    afterAll(async () => {
      await endpoint?.stop();
    });

    /** A storage under a fresh prefix whose client records (and may disturb) every request. */
    const open = (options: Partial<S3StorageOptions> = {}, recorderOptions: RecorderOptions = {}) => {
      const client = new S3Client(endpoint.clientConfig);
      const recorder = recordRequests(client, recorderOptions);
      const storage = createS3Storage({
        bucket: endpoint.bucket,
        client,
        prefix: `test/${randomUUID()}`,
        ...options,
      });
      opened.push({ storage, client });
      return { storage, recorder };
    };

    describe('every part but the last is at least 5 MiB, whatever pieces the caller writes', () => {
      it('re-buffers 512 KiB and 700 KiB pieces of a ~23 MiB object into parts of >= 5,242,880 bytes, numbered 1..n', async () => {
        const { storage, recorder } = open();
        const data = patterned(23 * MiB + 12_345, 7);
        const upload = await storage.beginUpload('odd-pieces.bin');
        let offset = 0;
        for (let index = 0; offset < data.length; index++) {
          const size = index % 2 === 0 ? 512 * KiB : 700 * KiB;
          await upload.writePart(data.subarray(offset, offset + size));
          offset += size;
        }
        const stored = await upload.complete();

        const parts = recorder.of('UploadPartCommand');
        expect(parts.length).toBeGreaterThanOrEqual(4);
        for (const part of parts.slice(0, -1)) expect(part.bodyLength).toBeGreaterThanOrEqual(5_242_880);
        expect(parts.map((part) => part.input.PartNumber)).toEqual(parts.map((_, index) => index + 1));
        expect(parts.reduce((sum, part) => sum + (part.bodyLength ?? 0), 0)).toBe(data.length);
        const completions = recorder.of('CompleteMultipartUploadCommand');
        expect(completions).toHaveLength(1);
        const multipart = completions[0]!.input.MultipartUpload as {
          Parts: { PartNumber: number; ETag: string }[];
        };
        const listed = multipart.Parts;
        expect(listed.map((part) => part.PartNumber)).toEqual(parts.map((_, index) => index + 1));
        expect(listed.every((part) => typeof part.ETag === 'string' && part.ETag.length > 0)).toBe(true);

        expect(stored.size).toBe(data.length);
        expect(equalBytes(await readAll(storage, 'odd-pieces.bin'), data)).toBe(true);
      });

      it('sends a piece of exactly one part as is, and joins smaller pieces only up to the part size', async () => {
        const { storage, recorder } = open();
        const whole = patterned(5 * MiB, 1);
        const small = patterned(3 * MiB, 2);
        const upload = await storage.beginUpload('mixed.bin');
        await upload.writePart(whole);
        await upload.writePart(small);
        await upload.writePart(small);
        await upload.writePart(Uint8Array.of(1, 2, 3));
        await upload.complete();
        const sizes = recorder.of('UploadPartCommand').map((part) => part.bodyLength);
        expect(sizes).toEqual([5 * MiB, 6 * MiB, 3]);
        // The caller's buffer itself went out: no copy on the common path.
        expect(recorder.of('UploadPartCommand')[0]?.input.Body).toBe(whole);
      });

      it('stores an object smaller than one part with a single PutObject, and an empty one too', async () => {
        const { storage, recorder } = open();
        const data = patterned(MiB + 5, 3);
        const upload = await storage.beginUpload('small.bin', {
          contentType: 'application/vnd.apache.parquet',
        });
        await upload.writePart(data.subarray(0, 1000));
        await upload.writePart(data.subarray(1000));
        expect((await upload.complete()).size).toBe(data.length);
        const empty = await storage.beginUpload('empty.bin');
        expect((await empty.complete()).size).toBe(0);

        expect(recorder.of('CreateMultipartUploadCommand')).toHaveLength(0);
        expect(recorder.of('PutObjectCommand').map((put) => put.bodyLength)).toEqual([data.length, 0]);
        expect(recorder.of('PutObjectCommand')[0]?.input.ContentType).toBe('application/vnd.apache.parquet');
        expect(equalBytes(await readAll(storage, 'small.bin'), data)).toBe(true);
        expect(await readAll(storage, 'empty.bin')).toHaveLength(0);
      });

      it(`refuses the part past ${s3MaxParts} with payload-too-large and aborts the upload`, async () => {
        const { storage, recorder } = open({}, { fakeUploadParts: true });
        const part = new Uint8Array(s3MinPartSize);
        const upload = await storage.beginUpload('too-many-parts.bin');
        for (let index = 0; index < s3MaxParts; index++) await upload.writePart(part);
        const refusal = await upload.writePart(part).catch((error: unknown) => error);
        expect(BackhaulError.isInstance(refusal) && refusal.code).toBe('payload-too-large');
        expect(recorder.of('UploadPartCommand')).toHaveLength(s3MaxParts);
        expect(recorder.of('AbortMultipartUploadCommand')).toHaveLength(1);
        expect(await storage.head('too-many-parts.bin')).toBeUndefined();
      });
    });

    describe('parts upload concurrently within partConcurrency, and writePart pushes back when the bound is full', () => {
      it('never has more than partConcurrency UploadPart requests in flight, and reaches the bound', async () => {
        const partConcurrency = 3;
        const { storage, recorder } = open({ partConcurrency }, { partDelayMs: 150 });
        const data = patterned(8 * s3MinPartSize + 99, 4);
        const upload = await storage.beginUpload('concurrent.bin');
        for (let offset = 0; offset < data.length; offset += s3MinPartSize) {
          await upload.writePart(data.subarray(offset, offset + s3MinPartSize));
          // Backpressure: a resolved writePart never leaves more than the bound in flight.
          expect(recorder.partsInFlight).toBeLessThanOrEqual(partConcurrency);
        }
        await upload.complete();
        expect(recorder.maxPartsInFlight).toBe(partConcurrency);
        expect(recorder.of('UploadPartCommand')).toHaveLength(9);
        expect(equalBytes(await readAll(storage, 'concurrent.bin'), data)).toBe(true);
      });

      it('keeps call order when the caller does not await each writePart', async () => {
        const { storage } = open({ partConcurrency: 2 });
        const data = patterned(12 * MiB + 3, 6);
        const upload = await storage.beginUpload('unawaited.bin');
        const writes: Promise<void>[] = [];
        for (let offset = 0; offset < data.length; offset += 700 * KiB) {
          writes.push(upload.writePart(data.subarray(offset, offset + 700 * KiB)));
        }
        const stored = await upload.complete();
        await Promise.all(writes);
        expect(stored.size).toBe(data.length);
        expect(equalBytes(await readAll(storage, 'unawaited.bin'), data)).toBe(true);
      });

      it('sends parts one at a time with partConcurrency 1', async () => {
        const { storage, recorder } = open({ partConcurrency: 1 }, { partDelayMs: 50 });
        const upload = await storage.beginUpload('serial.bin');
        for (let index = 0; index < 4; index++) await upload.writePart(patterned(s3MinPartSize, index));
        await upload.complete();
        expect(recorder.maxPartsInFlight).toBe(1);
      });
    });

    describe('any failure aborts the multipart upload and rejects with storage-failed', () => {
      it('a failing part 3 rejects the upload with storage-failed after AbortMultipartUpload was sent', async () => {
        const { storage, recorder } = open(
          {},
          {
            failWhen: (request) => request.command === 'UploadPartCommand' && request.input.PartNumber === 3,
          },
        );
        const upload = await storage.beginUpload('fails.bin');
        const outcome = await (async () => {
          for (let index = 0; index < 6; index++) await upload.writePart(patterned(s3MinPartSize, index));
          return upload.complete();
        })().catch((error: unknown) => error);

        expect(BackhaulError.isInstance(outcome)).toBe(true);
        expect((outcome as BackhaulError).code).toBe('storage-failed');
        expect((outcome as BackhaulError).retryable).toBe(true);
        const aborts = recorder.of('AbortMultipartUploadCommand');
        expect(aborts).toHaveLength(1);
        const [created] = recorder.of('CreateMultipartUploadCommand');
        expect(created).toBeDefined();
        expect(aborts[0]?.input.Key).toBe(created?.input.Key);
        expect(recorder.of('CompleteMultipartUploadCommand')).toHaveLength(0);
        // Nothing is visible, later calls keep failing the same way, and abort() is harmless.
        expect(await storage.head('fails.bin')).toBeUndefined();
        await expect(upload.writePart(Uint8Array.of(1))).rejects.toMatchObject({ code: 'storage-failed' });
        await expect(upload.complete()).rejects.toMatchObject({ code: 'storage-failed' });
        await upload.abort();
        expect(recorder.of('AbortMultipartUploadCommand')).toHaveLength(1);
      });

      it('a failing CompleteMultipartUpload rejects with storage-failed and aborts', async () => {
        const { storage, recorder } = open(
          {},
          { failWhen: (request) => request.command === 'CompleteMultipartUploadCommand' },
        );
        const upload = await storage.beginUpload('complete-fails.bin');
        await upload.writePart(patterned(s3MinPartSize, 1));
        await upload.writePart(Uint8Array.of(1, 2));
        await expect(upload.complete()).rejects.toMatchObject({ code: 'storage-failed' });
        expect(recorder.of('AbortMultipartUploadCommand')).toHaveLength(1);
        expect(await storage.head('complete-fails.bin')).toBeUndefined();
      });

      it('a failing PutObject of a small object rejects with storage-failed', async () => {
        const { storage } = open({}, { failWhen: (request) => request.command === 'PutObjectCommand' });
        const upload = await storage.beginUpload('small-fails.bin');
        await upload.writePart(Uint8Array.of(1, 2, 3));
        await expect(upload.complete()).rejects.toMatchObject({ code: 'storage-failed' });
      });
    });

    describe('abort() discards the upload and is idempotent', () => {
      it('sends AbortMultipartUpload once, however often abort() is called', async () => {
        const { storage, recorder } = open();
        const upload = await storage.beginUpload('aborted.bin');
        await upload.writePart(patterned(s3MinPartSize, 1));
        await Promise.all([upload.abort(), upload.abort()]);
        await upload.abort();
        expect(recorder.of('AbortMultipartUploadCommand')).toHaveLength(1);
        await expect(upload.writePart(Uint8Array.of(1))).rejects.toMatchObject({ code: 'invalid-state' });
        await expect(upload.complete()).rejects.toMatchObject({ code: 'invalid-state' });
      });

      it('stops a write waiting for a free slot: no part and no upload start after abort()', async () => {
        const { storage, recorder } = open({ partConcurrency: 1 }, { partDelayMs: 300 });
        const upload = await storage.beginUpload('abort-while-waiting.bin');
        await upload.writePart(patterned(s3MinPartSize, 1));
        const waiting = upload.writePart(patterned(s3MinPartSize, 2)).catch((error: unknown) => error);
        await upload.abort();
        expect(await waiting).toMatchObject({ code: 'invalid-state' });
        expect(recorder.of('UploadPartCommand')).toHaveLength(1);
        expect(recorder.of('CreateMultipartUploadCommand')).toHaveLength(1);
        expect(recorder.of('AbortMultipartUploadCommand')).toHaveLength(1);
      });

      it('sends nothing when no part left the buffer yet', async () => {
        const { storage, recorder } = open();
        const upload = await storage.beginUpload('never-sent.bin');
        await upload.writePart(patterned(MiB, 1));
        await upload.abort();
        expect(recorder.requests).toHaveLength(0);
      });

      it('does nothing after complete()', async () => {
        const { storage, recorder } = open();
        const upload = await storage.beginUpload('kept.bin');
        await upload.writePart(Uint8Array.of(1));
        await upload.complete();
        await upload.abort();
        expect(recorder.of('AbortMultipartUploadCommand')).toHaveLength(0);
        expect((await storage.head('kept.bin'))?.size).toBe(1);
      });
    });

    describe('presigned GET URLs download the object directly and expire', () => {
      it('downloads byte-identical bytes with a plain fetch', async () => {
        const { storage } = open();
        const data = patterned(6 * MiB + 17, 5);
        await put(storage, 'results/gw-1/result.parquet', [
          data.subarray(0, 5 * MiB),
          data.subarray(5 * MiB),
        ]);
        const url = await storage.presignGet('results/gw-1/result.parquet');
        expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('3600');
        const response = await fetch(url);
        expect(response.status).toBe(200);
        expect(equalBytes(new Uint8Array(await response.arrayBuffer()), data)).toBe(true);
      });

      it('refuses a URL once its lifetime (1 s) has passed', async () => {
        const { storage } = open();
        await put(storage, 'short-lived.bin', [Uint8Array.of(1, 2, 3)]);
        const url = await storage.presignGet('short-lived.bin', 1);
        await sleep(2_100);
        const response = await fetch(url);
        expect(response.status).toBe(403);
        await response.arrayBuffer();
      });

      it('uses presignExpiresSeconds when no lifetime is given, and refuses lifetimes SigV4 cannot sign', async () => {
        const { storage } = open({ presignExpiresSeconds: 120 });
        const url = await storage.presignGet('any.bin');
        expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('120');
        await expect(storage.presignGet('any.bin', 0)).rejects.toMatchObject({ code: 'bad-request' });
        await expect(storage.presignGet('any.bin', 604_801)).rejects.toMatchObject({ code: 'bad-request' });
      });
    });

    describe('sweep removes what the retention no longer covers, and only under the prefix', () => {
      it('sweepExpired keeps objects younger than retentionMs and removes older ones', async () => {
        const { storage } = open({ retentionMs: 3_600_000 });
        await put(storage, 'a.bin', [Uint8Array.of(1)]);
        await put(storage, 'nested/b.bin', [Uint8Array.of(2)]);
        expect(await storage.sweepExpired()).toBe(0);
        expect(await storage.sweepExpired(Date.now() + 2 * 3_600_000)).toBe(2);
        expect(await storage.head('a.bin')).toBeUndefined();
        expect(await storage.head('nested/b.bin')).toBeUndefined();
      });

      it('leaves objects of another prefix alone', async () => {
        const prefix = `test/${randomUUID()}`;
        const mine = open({ prefix: `${prefix}/mine` }).storage;
        const theirs = open({ prefix: `${prefix}/mine-too-similar` }).storage;
        await put(mine, 'x.bin', [Uint8Array.of(1)]);
        await put(theirs, 'x.bin', [Uint8Array.of(2)]);
        expect(await mine.sweep(Date.now() + 60_000)).toBe(1);
        expect((await theirs.head('x.bin'))?.size).toBe(1);
      });

      it('aborts abandoned multipart uploads where the endpoint lists them (s3rver cannot)', async () => {
        const { storage, recorder } = open();
        const upload = await storage.beginUpload('abandoned.bin');
        await upload.writePart(patterned(s3MinPartSize, 1));
        await upload.writePart(Uint8Array.of(1));
        // The part is queued; wait until it has landed so the upload is really pending.
        while (recorder.partsInFlight > 0) await sleep(10);
        const removed = await storage.sweep(Date.now() + 60_000);
        expect(recorder.of('ListMultipartUploadsCommand').length).toBeGreaterThanOrEqual(1);
        expect(removed).toBe(endpoint.kind === 's3rver' ? 0 : 1);
      });
    });

    describe('lifecycle rules where the endpoint has them', () => {
      it(`applyLifecycle ${label === 's3rver' ? 'answers false on s3rver, which has no lifecycle' : 'installs the rule'}`, async () => {
        // A fixed prefix, so a real bucket gains at most one test rule (expiring after a day).
        const { storage } = open({ prefix: 'backhaul-lifecycle-test', retentionMs: 3_600_000 });
        expect(await storage.applyLifecycle()).toBe(endpoint.kind !== 's3rver');
      });
    });

    describe('reads', () => {
      it('reads ranges across part boundaries, and an empty range past the end', async () => {
        const { storage } = open();
        const data = patterned(5 * MiB + 1000, 8);
        await put(storage, 'ranges.bin', [data.subarray(0, 5 * MiB), data.subarray(5 * MiB)]);
        const boundary = 5 * MiB;
        const slice = await readAll(storage, 'ranges.bin', { start: boundary - 10, end: boundary + 10 });
        expect(equalBytes(slice, data.subarray(boundary - 10, boundary + 10))).toBe(true);
        expect(await readAll(storage, 'ranges.bin', { start: data.length + 5 })).toHaveLength(0);
        expect(await readAll(storage, 'ranges.bin', { start: 3, end: 3 })).toHaveLength(0);
        await expect(storage.read('missing.bin', { start: 3, end: 3 })).rejects.toMatchObject({
          code: 'not-found',
        });
        await expect(storage.read('ranges.bin', { start: 5, end: 2 })).rejects.toMatchObject({
          code: 'bad-request',
        });
      });
    });
  });
}

describe('keys and options are validated before anything is sent', () => {
  const storage = createS3Storage({ bucket: 'unused', endpoint: 'http://127.0.0.1:9', region: 'us-east-1' });

  it.each(['', '../escape', 'a//b', '/leading', 'trailing/', '.hidden', 'a/./b', 'spaces are out', 'ü.bin'])(
    'refuses the key %j with bad-request',
    async (key) => {
      await expect(storage.beginUpload(key)).rejects.toMatchObject({ code: 'bad-request' });
      await expect(storage.head(key)).rejects.toMatchObject({ code: 'bad-request' });
    },
  );

  it('refuses a part size under S3’s 5 MiB minimum, and other nonsense', () => {
    expect(() => createS3Storage({ bucket: 'b', partSize: 5 * 1000 * 1000 })).toThrow(RangeError);
    expect(() => createS3Storage({ bucket: 'b', partConcurrency: 0 })).toThrow(RangeError);
    expect(() => createS3Storage({ bucket: 'b', presignExpiresSeconds: 0 })).toThrow(RangeError);
    expect(() => createS3Storage({ bucket: '' })).toThrow(TypeError);
  });

  it('declares its capabilities: presigned URLs, 5 MiB parts by default, 10,000 parts', () => {
    expect(storage.name).toBe('s3');
    expect(storage.capabilities).toEqual({ presignedUrls: true, minPartSize: 5_242_880, maxParts: 10_000 });
    expect(createS3Storage({ bucket: 'b', partSize: 8 * MiB }).capabilities.minPartSize).toBe(8 * MiB);
  });
});

describe('ensureBucket creates a missing bucket once (s3rver)', () => {
  let endpoint: S3Endpoint;
  beforeAll(async () => {
    endpoint = await startS3rver();
  });
  afterAll(async () => {
    await endpoint?.stop();
  });

  it('creates it, then finds it', async () => {
    const client = new S3Client(endpoint.clientConfig);
    const recorder = recordRequests(client);
    const storage = createS3Storage({ bucket: 'backhaul-created', client });
    await storage.ensureBucket();
    await storage.ensureBucket();
    expect(recorder.of('CreateBucketCommand')).toHaveLength(1);
    await put(storage, 'x.bin', [Uint8Array.of(1)]);
    expect((await storage.head('x.bin'))?.size).toBe(1);
    client.destroy();
  });
});

async function put(storage: ObjectStorage, key: string, parts: Uint8Array[]) {
  const upload = await storage.beginUpload(key);
  for (const part of parts) await upload.writePart(part);
  return upload.complete();
}

async function readAll(storage: ObjectStorage, key: string, range?: { start: number; end?: number }) {
  const pieces: Uint8Array[] = [];
  for await (const piece of await storage.read(key, range)) pieces.push(piece);
  return new Uint8Array(Buffer.concat(pieces));
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
