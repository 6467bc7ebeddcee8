import { request } from 'node:http';
import { createZstdCodec } from '@backhaul/codec-zstd';
import { createMemoryUploadLedger } from '@backhaul/core';
import type { BackhaulServerOptions } from '@backhaul/server-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  callerToken,
  dispatchedCommand,
  gatewayA,
  gatewayPost,
  getJson,
  putChunk,
  randomBytesOf,
  startServer,
  type TestServer,
  xxhash,
} from './helpers.js';

const chunkSize = 64 * 1024;
const chunkWindow = 8;

const chunksOf = (file: Uint8Array) => {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < file.length; offset += chunkSize)
    chunks.push(file.subarray(offset, offset + chunkSize));
  return chunks;
};

/**
 * Every rule runs against both ingests: the in-memory one of a single process, and the staged one
 * of servers that share an upload ledger (each chunk stored on its own before its 201).
 */
const ingests: [string, Partial<BackhaulServerOptions>][] = [
  ['in one process', {}],
  ['staged, with a shared upload ledger', { uploadLedger: createMemoryUploadLedger() }],
];

describe.each(ingests)('chunk ingest %s', (_name, options) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer(
      { chunkSize, chunkWindow, codecs: [createZstdCodec()], ...options },
      { minPartSize: 4 * chunkSize },
    );
  });
  afterAll(() => t?.close());

  async function completeFile(id: string, file: Uint8Array, overrides: Record<string, unknown> = {}) {
    return gatewayPost(t.url, gatewayA.token, id, 'complete', {
      kind: 'file',
      format: 'parquet',
      size: file.length,
      checksum: await xxhash(file),
      rowCount: 10,
      chunkCount: chunksOf(file).length,
      ...overrides,
    });
  }

  /** §6.3 The receipt's indices; `checksumsOf` reads the checksums it lists with them. */
  const fullReceipt = async (id: string) =>
    (await getJson(`${t.url}/v1/gateway/commands/${id}/chunks`, gatewayA.token)).body as {
      contiguous: number;
      buffered: number[];
      checksums?: Record<string, string>;
    };
  const receipt = async (id: string) => {
    const { contiguous, buffered } = await fullReceipt(id);
    return { contiguous, buffered };
  };

  describe('§6 a file uploaded in chunks out of order within the window is assembled byte for byte', () => {
    it('stores, completes with the right checksum and serves the exact bytes at the result URL', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const file = randomBytesOf(9 * chunkSize + 1234, 7);
      const chunks = chunksOf(file);
      expect(chunks).toHaveLength(10);
      // Out of order, but never past the window: 1,0,3,2,5,4,... then the short last one.
      const order = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8];
      const statuses = await Promise.all(
        order.slice(0, 4).map((index) => putChunk(t.url, gatewayA.token, id, index, chunks[index]!)),
      );
      for (const index of order.slice(4))
        statuses.push(await putChunk(t.url, gatewayA.token, id, index, chunks[index]!));
      expect(statuses.map((r) => r.status)).toEqual(order.map(() => 201));

      // §5.4: the same chunk again is a 200 that changes nothing.
      expect((await putChunk(t.url, gatewayA.token, id, 3, chunks[3]!)).status).toBe(200);
      expect(await receipt(id)).toEqual({ contiguous: 10, buffered: [] });

      const completed = await completeFile(id, file);
      expect(completed.status).toBe(200);
      const view = (await completed.json()) as {
        state: string;
        result: { url: string; size: number; checksum: string };
      };
      expect(view.state).toBe('completed');
      expect(view.result.size).toBe(file.length);

      const download = await fetch(view.result.url);
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toBe('application/vnd.apache.parquet');
      expect(Number(download.headers.get('content-length'))).toBe(file.length);
      expect(Buffer.from(await download.arrayBuffer()).equals(Buffer.from(file))).toBe(true);

      // Parts are max(minPartSize, chunkSize): every one but the last is exactly 4 chunks.
      expect(t.parts.slice(-3)).toEqual([4 * chunkSize, 4 * chunkSize, chunkSize + 1234]);

      // §3.4: the caller's result is a 303 to the download URL.
      const result = await fetch(`${t.url}/v1/queries/${id}/result`, {
        headers: { authorization: `Bearer ${callerToken}` },
        redirect: 'manual',
      });
      expect(result.status).toBe(303);
      expect(result.headers.get('location')).toContain('/v1/downloads/results/gw-a/');

      // A repeated completion gets the same answer (its first answer may have been lost).
      const again = await completeFile(id, file);
      expect(again.status).toBe(200);
      expect(((await again.json()) as { state: string }).state).toBe('completed');
      stream.close();
    });

    it('accepts zstd-compressed chunks and checks the decoded bytes', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const codec = createZstdCodec();
      const file = new Uint8Array(2 * chunkSize + 10).fill(42);
      for (const [index, chunk] of chunksOf(file).entries()) {
        const encoded = await codec.encode(chunk);
        const response = await putChunk(t.url, gatewayA.token, id, index, encoded, {
          codec: 'zstd',
          checksum: await xxhash(chunk),
          rawLength: chunk.length,
        });
        expect(response.status).toBe(201);
      }
      const completed = await completeFile(id, file);
      expect(completed.status).toBe(200);
      const view = (await completed.json()) as { result: { url: string } };
      const bytes = new Uint8Array(await (await fetch(view.result.url)).arrayBuffer());
      expect(Buffer.from(bytes).equals(Buffer.from(file))).toBe(true);
      stream.close();
    });
  });

  describe('§6.2 decoded bytes whose checksum differs from the header: 422 checksum-mismatch, nothing stored', () => {
    it('refuses the chunk and GET chunks shows it absent', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const chunk = randomBytesOf(chunkSize, 3);
      const response = await putChunk(t.url, gatewayA.token, id, 0, chunk, { checksum: '0123456789abcdef' });
      expect(response.status).toBe(422);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(((await response.json()) as { code: string }).code).toBe('checksum-mismatch');
      expect(await receipt(id)).toEqual({ contiguous: 0, buffered: [] });

      const wrongLength = await putChunk(t.url, gatewayA.token, id, 1, chunk, { rawLength: chunkSize - 1 });
      expect(wrongLength.status).toBe(422);
      expect(await receipt(id)).toEqual({ contiguous: 0, buffered: [] });
      stream.close();
    });
  });

  describe('§6.2 the same index with a different checksum than the one stored: 409 chunk-conflict', () => {
    it('keeps the first chunk', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      expect((await putChunk(t.url, gatewayA.token, id, 2, randomBytesOf(chunkSize, 1))).status).toBe(201);
      const conflict = await putChunk(t.url, gatewayA.token, id, 2, randomBytesOf(chunkSize, 2));
      expect(conflict.status).toBe(409);
      expect(((await conflict.json()) as { code: string }).code).toBe('chunk-conflict');
      expect(await receipt(id)).toEqual({ contiguous: 0, buffered: [2] });
      // §6.3 The receipt names the checksum kept, so a resuming gateway can tell its chunk is that one.
      expect((await fullReceipt(id)).checksums).toEqual({ '2': await xxhash(randomBytesOf(chunkSize, 1)) });
      stream.close();
    });

    it('refuses a short chunk that is not the last one', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      expect((await putChunk(t.url, gatewayA.token, id, 3, randomBytesOf(chunkSize, 1))).status).toBe(201);
      const short = await putChunk(t.url, gatewayA.token, id, 1, randomBytesOf(100, 2));
      expect(short.status).toBe(409);
      stream.close();
    });
  });

  describe('§6.2 an index more than chunkWindow past the first missing chunk: 409 chunk-out-of-window (retryable)', () => {
    it('refuses it with Retry-After, and accepts it once the gap fills', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const far = await putChunk(t.url, gatewayA.token, id, chunkWindow, randomBytesOf(chunkSize, 9));
      expect(far.status).toBe(409);
      expect(far.headers.get('retry-after')).toBe('1');
      const problem = (await far.json()) as { code: string; retryable: boolean };
      expect(problem).toMatchObject({ code: 'chunk-out-of-window', retryable: true });
      expect((await putChunk(t.url, gatewayA.token, id, 0, randomBytesOf(chunkSize, 8))).status).toBe(201);
      expect(
        (await putChunk(t.url, gatewayA.token, id, chunkWindow, randomBytesOf(chunkSize, 9))).status,
      ).toBe(201);
      stream.close();
    });
  });

  describe('§6.2 a body larger than chunkSize plus codec overhead, or a decoded length above chunkSize: 413', () => {
    it('refuses an oversized identity body', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const response = await putChunk(t.url, gatewayA.token, id, 0, randomBytesOf(chunkSize + 1, 1));
      expect(response.status).toBe(413);
      expect(((await response.json()) as { code: string }).code).toBe('payload-too-large');
      expect(await receipt(id)).toEqual({ contiguous: 0, buffered: [] });
      stream.close();
    });

    it('refuses a raw length above chunkSize before reading the body', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const response = await putChunk(t.url, gatewayA.token, id, 0, randomBytesOf(10, 1), {
        rawLength: chunkSize + 1,
      });
      expect(response.status).toBe(413);
      stream.close();
    });

    it('refuses a zstd frame that expands past chunkSize (a decompression bomb)', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const bomb = await createZstdCodec().encode(new Uint8Array(4 * chunkSize));
      const response = await putChunk(t.url, gatewayA.token, id, 0, bomb, {
        codec: 'zstd',
        checksum: '0000000000000000',
        rawLength: chunkSize,
      });
      expect(response.status).toBe(413);
      stream.close();
    });
  });

  describe('§6.2 a codec not in hello.codecs: 415 unsupported-codec', () => {
    it('refuses it', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const response = await putChunk(t.url, gatewayA.token, id, 0, randomBytesOf(100, 1), {
        codec: 'brotli',
      });
      expect(response.status).toBe(415);
      expect(((await response.json()) as { code: string }).code).toBe('unsupported-codec');
      stream.close();
    });
  });

  describe('§6.4 a completion whose chunks, size or checksum do not match: 422, and no URL is ever issued', () => {
    async function uploadAll(id: string, file: Uint8Array, skip?: number) {
      for (const [index, chunk] of chunksOf(file).entries()) {
        if (index !== skip)
          expect((await putChunk(t.url, gatewayA.token, id, index, chunk)).status).toBe(201);
      }
    }
    const expectNoUrl = async (id: string) => {
      const result = await fetch(`${t.url}/v1/queries/${id}/result`, {
        headers: { authorization: `Bearer ${callerToken}` },
        redirect: 'manual',
      });
      expect(result.status).not.toBe(303);
      expect(result.headers.get('content-type')).toBe('application/problem+json');
      const view = (await getJson(`${t.url}/v1/queries/${id}`, callerToken)).body as {
        state: string;
        result?: unknown;
      };
      expect(view.state).toBe('failed');
      expect(view.result).toBeUndefined();
    };

    it('refuses a wrong whole-file checksum', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const file = randomBytesOf(3 * chunkSize + 5, 11);
      await uploadAll(id, file);
      const response = await completeFile(id, file, { checksum: 'ffffffffffffffff' });
      expect(response.status).toBe(422);
      expect(((await response.json()) as { code: string }).code).toBe('checksum-mismatch');
      await expectNoUrl(id);
      stream.close();
    });

    it('refuses a file with a missing chunk', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const file = randomBytesOf(3 * chunkSize + 5, 12);
      await uploadAll(id, file, 1);
      const response = await completeFile(id, file);
      expect(response.status).toBe(422);
      expect(((await response.json()) as { code: string }).code).toBe('file-incomplete');
      await expectNoUrl(id);
      stream.close();
    });

    it('refuses a size that differs from the bytes received', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const file = randomBytesOf(2 * chunkSize, 13);
      await uploadAll(id, file);
      const response = await completeFile(id, file, { size: file.length + 1 });
      expect(response.status).toBe(422);
      await expectNoUrl(id);
      stream.close();
    });
  });

  describe('§6 concurrent and broken uploads leave the file consistent', () => {
    it('serializes concurrent PUTs of one index: one 201, the others 200', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const chunk = randomBytesOf(chunkSize, 21);
      const statuses = await Promise.all(
        Array.from({ length: 4 }, () => putChunk(t.url, gatewayA.token, id, 0, chunk).then((r) => r.status)),
      );
      expect(statuses.sort()).toEqual([200, 200, 200, 201]);
      expect(await receipt(id)).toEqual({ contiguous: 1, buffered: [] });
      stream.close();
    });

    it('survives a client that hangs up halfway through a chunk, and stores nothing of it', async () => {
      const { id, stream } = await dispatchedCommand(t.url, 'file');
      const chunk = randomBytesOf(chunkSize, 22);
      const target = new URL(`${t.url}/v1/gateway/commands/${id}/chunks/0`);
      await new Promise<void>((resolve) => {
        const req = request(
          {
            host: target.hostname,
            port: target.port,
            path: target.pathname,
            method: 'PUT',
            headers: {
              authorization: `Bearer ${gatewayA.token}`,
              'content-length': chunk.length,
              'backhaul-codec': 'identity',
              'backhaul-checksum': '0000000000000000',
              'backhaul-raw-length': chunk.length,
            },
          },
          () => resolve(),
        );
        req.on('error', () => resolve());
        req.write(chunk.subarray(0, 1000), () => setTimeout(() => req.destroy(), 50));
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await receipt(id)).toEqual({ contiguous: 0, buffered: [] });
      expect((await putChunk(t.url, gatewayA.token, id, 0, chunk)).status).toBe(201);
      stream.close();
    });
  });
});
