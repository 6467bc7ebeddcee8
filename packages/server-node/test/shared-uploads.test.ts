import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CommandStore,
  createMemoryCommandStore,
  createMemoryUploadLedger,
  type ObjectStorage,
  type UploadLedger,
} from '@backhaul/core';
import { resultKey } from '@backhaul/server-node';
import { createFsStorage } from '@backhaul/storage-fs';
import { afterEach, describe, expect, it } from 'vitest';
import { stagingKey } from '../src/staged-chunk-ingest.js';
import {
  dispatchedCommand,
  type EventStream,
  gatewayA,
  gatewayPost,
  getJson,
  putChunk,
  randomBytesOf,
  startServer,
  type TestServer,
  xxhash,
} from './helpers.js';

/**
 * Servers sharing one command store, one upload ledger and one storage, as instances share Redis
 * and S3 (docs/cluster.md "Shared uploads"): chunk PUTs, receipts and the completion of one file
 * each reach any of them. test/end-to-end/shared-uploads.test.ts runs the same with server
 * processes behind a round-robin proxy, and kills one mid-upload.
 */

const chunkSize = 64 * 1024;
const sharedRoots: string[] = [];
let servers: TestServer[] = [];
const streams: EventStream[] = [];
let store: CommandStore | undefined;
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
  await store?.close();
  for (const root of sharedRoots.splice(0)) rmSync(root, { recursive: true, force: true });
});

async function cluster(count: number) {
  store = createMemoryCommandStore();
  const ledger = createMemoryUploadLedger();
  const root = mkdtempSync(join(tmpdir(), 'backhaul-shared-'));
  sharedRoots.push(root);
  const storage = createFsStorage({ root });
  servers = await Promise.all(
    Array.from({ length: count }, () =>
      startServer({ store, uploadLedger: ledger, storage, chunkSize, chunkWindow: 8 }),
    ),
  );
  return { servers, ledger, storage };
}

const chunksOf = (file: Uint8Array) =>
  Array.from({ length: Math.ceil(file.length / chunkSize) }, (_, i) =>
    file.subarray(i * chunkSize, (i + 1) * chunkSize),
  );

/** A file command acknowledged through `on`, its gateway stream kept open there. */
async function fileCommand(on: TestServer) {
  const command = await dispatchedCommand(on.url, 'file');
  streams.push(command.stream);
  return command.id;
}

const completion = async (file: Uint8Array) => ({
  kind: 'file',
  format: 'parquet',
  size: file.length,
  checksum: await xxhash(file),
  rowCount: 1,
  chunkCount: chunksOf(file).length,
});

async function readObject(storage: ObjectStorage, key: string) {
  const pieces: Uint8Array[] = [];
  for await (const piece of await storage.read(key)) pieces.push(piece);
  return Buffer.concat(pieces);
}

describe('a file whose chunks reach different server instances', () => {
  it('is assembled byte for byte by whichever instance takes the completion, and its staged chunks are deleted', async () => {
    const { servers, storage } = await cluster(3);
    const [a, b, c] = servers as [TestServer, TestServer, TestServer];
    const id = await fileCommand(a);
    const file = randomBytesOf(10 * chunkSize + 777, 31);
    const chunks = chunksOf(file);
    // Round robin, as a proxy without stickiness spreads them; at most chunkWindow at once (§6.2).
    const put = (index: number) =>
      putChunk(servers[index % 3]!.url, gatewayA.token, id, index, chunks[index]!).then((r) => r.status);
    const statuses = await Promise.all(chunks.slice(0, 8).map((_, index) => put(index)));
    for (let index = 8; index < chunks.length; index++) statuses.push(await put(index));
    expect(statuses).toEqual(chunks.map(() => 201));
    // A retry of an acknowledged chunk on another instance changes nothing (§6.2).
    expect((await putChunk(c.url, gatewayA.token, id, 0, chunks[0]!)).status).toBe(200);
    // §6.3: every instance gives the same receipt.
    for (const server of servers) {
      const { body } = await getJson(`${server.url}/v1/gateway/commands/${id}/chunks`, gatewayA.token);
      expect(body.contiguous).toBe(chunks.length);
      expect(body.buffered).toEqual([]);
      expect(body.checksums['3']).toBe(await xxhash(chunks[3]!));
    }

    const answer = await gatewayPost(b.url, gatewayA.token, id, 'complete', await completion(file));
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { state: string }).state).toBe('completed');
    // The same completion again, on another instance, gets the same answer.
    const again = await gatewayPost(c.url, gatewayA.token, id, 'complete', await completion(file));
    expect(again.status).toBe(200);

    const key = resultKey(gatewayA.id, id);
    expect(Buffer.compare(await readObject(storage, key), Buffer.from(file))).toBe(0);
    for (const [index, chunk] of chunks.entries()) {
      expect(await storage.head(stagingKey(id, index, await xxhash(chunk)))).toBeUndefined();
    }
  });

  it('survives close() of the instance that took the first chunks: another one takes the rest and the completion', async () => {
    const { servers, storage } = await cluster(2);
    const [a, b] = servers as [TestServer, TestServer];
    const id = await fileCommand(b);
    const file = randomBytesOf(5 * chunkSize + 5, 32);
    const chunks = chunksOf(file);
    for (const index of [0, 1, 2]) {
      expect((await putChunk(a.url, gatewayA.token, id, index, chunks[index]!)).status).toBe(201);
    }
    await a.server.close();

    const { body } = await getJson(`${b.url}/v1/gateway/commands/${id}/chunks`, gatewayA.token);
    expect(body.contiguous).toBe(3);
    for (const index of [3, 4, 5]) {
      expect((await putChunk(b.url, gatewayA.token, id, index, chunks[index]!)).status).toBe(201);
    }
    expect((await gatewayPost(b.url, gatewayA.token, id, 'complete', await completion(file))).status).toBe(
      200,
    );
    expect(Buffer.compare(await readObject(storage, resultKey(gatewayA.id, id)), Buffer.from(file))).toBe(0);
  });

  it('answers 503 with Retry-After while another instance holds the completion, and takes it over once its lease runs out', async () => {
    const { servers, ledger } = await cluster(2);
    const [a, b] = servers as [TestServer, TestServer];
    const id = await fileCommand(a);
    const file = randomBytesOf(2 * chunkSize, 33);
    for (const [index, chunk] of chunksOf(file).entries())
      await putChunk(a.url, gatewayA.token, id, index, chunk);
    // An instance that claimed the completion and died: its lease runs out on its own.
    await claimAsDeadInstance(ledger, id);

    const busy = await gatewayPost(b.url, gatewayA.token, id, 'complete', await completion(file));
    expect(busy.status).toBe(503);
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    let status = busy.status;
    while (status === 503) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (await gatewayPost(b.url, gatewayA.token, id, 'complete', await completion(file))).status;
    }
    expect(status).toBe(200);
  });

  it('fails the file, rather than make a wrong one visible, when a staged chunk is gone', async () => {
    const { servers, storage } = await cluster(2);
    const [a, b] = servers as [TestServer, TestServer];
    const id = await fileCommand(a);
    const file = randomBytesOf(3 * chunkSize, 34);
    const chunks = chunksOf(file);
    for (const [index, chunk] of chunks.entries()) await putChunk(b.url, gatewayA.token, id, index, chunk);
    await storage.delete(stagingKey(id, 1, await xxhash(chunks[1]!)));

    const answer = await gatewayPost(a.url, gatewayA.token, id, 'complete', await completion(file));
    expect(answer.status).toBe(422);
    expect(((await answer.json()) as { code: string }).code).toBe('file-incomplete');
    expect(await storage.head(resultKey(gatewayA.id, id))).toBeUndefined();
    expect(await storage.head(stagingKey(id, 0, await xxhash(chunks[0]!)))).toBeUndefined();
  });
});

async function claimAsDeadInstance(ledger: UploadLedger, id: string) {
  expect(await ledger.claimCompletion(id, 'an-instance-that-died', 300)).toEqual({ kind: 'claimed' });
}
