import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChecksummer } from '@backhaul/core';
import { encodeCursorAsParquet } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { type GatewayProcess, startGatewayProcess } from '../support/gateway-processes.js';
import { gatewayId, gatewayToken, type Harness, startHarness } from '../support/harness.js';
import { until } from '../support/until.js';

/**
 * A real gateway process SIGKILLed in the middle of a file upload, and started again:
 * the server keeps running and holds the chunks it took. The restarted gateway is sent the
 * command again on connect (§4), runs the query again (the Parquet encoder is deterministic, so
 * the same bytes come out), reads the receipt (§6.3) and sends only what the server lacks.
 * Counted on the server's side of an HTTP proxy: every PUT and the status it got.
 */

const SQL = 'SELECT * FROM orders ORDER BY id';
const CHUNK_SIZE = 64 * 1024;
/** Chunk PUTs let through before the proxy starts holding them; then the gateway is killed. */
const LET_THROUGH = 8;

let dir: string;
let dbPath: string;
let harness: Harness;
let proxy: FaultProxy;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'backhaul-resume-'));
  dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), 60_000).path;
  harness = await startHarness({ sqlitePath: dbPath, server: { chunkSize: CHUNK_SIZE } });
});
afterAll(async () => {
  await harness?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts a gateway process on `sqlitePath`, submits the file query, lets LET_THROUGH chunk PUTs
 * reach the server, holds the rest, and SIGKILLs the gateway there. Returns what the server had
 * stored (acked with 201) and a way to start the next gateway with nothing held.
 */
async function killMidUpload(sqlitePath: string) {
  let holding = true;
  let putsSeen = 0;
  proxy = await startFaultProxy(harness.url, (method, path) => {
    if (method !== 'PUT' || !path.includes('/chunks/')) return undefined;
    putsSeen++;
    return holding && putsSeen > LET_THROUGH ? 'stall' : undefined;
  });
  const start = async () => {
    const gateway = await startGatewayProcess({
      serverUrl: proxy.url,
      token: gatewayToken,
      sqlitePath,
      chunksInFlight: 4,
      log: process.env.BACKHAUL_TEST_SERVER_LOG === '1',
    });
    gateways.push(gateway);
    return gateway;
  };

  const first = await start();
  const { id } = await harness.client.submit({ gatewayId, sql: SQL, mode: 'file' });
  // The first run got LET_THROUGH chunks in and is now waiting on held requests: kill it there.
  await until(
    () =>
      chunkPuts().filter((entry) => entry.status === 201).length === LET_THROUGH &&
      chunkPuts().some((entry) => entry.status === 0),
    'the first run to store its chunks and block',
  );
  expect(await first.kill()).toEqual({ code: null, signal: 'SIGKILL' });
  const storedBeforeRestart = new Set(
    chunkPuts()
      .filter((entry) => entry.status === 201)
      .map((entry) => chunkIndex(entry.path)),
  );
  expect(storedBeforeRestart.size).toBe(LET_THROUGH);
  expect((await harness.client.get(id)).state).toMatch(/^(acknowledged|running)$/);
  await until(() => !harness.server.listGateways()[0]?.connected, 'the server to see the gateway gone');
  return {
    id,
    storedBeforeRestart,
    /** Starts the second gateway, nothing held any more; returns where its requests start in the log. */
    restart: async () => {
      holding = false;
      const killedAt = proxy.log.length;
      await start();
      return killedAt;
    },
  };
}

const chunkIndex = (path: string) => Number(path.slice(path.lastIndexOf('/') + 1));
const chunkPuts = () =>
  proxy.log.filter((entry) => entry.method === 'PUT' && entry.path.includes('/chunks/'));

afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gateway) => gateway.kill()));
  await proxy?.close();
});

it('a gateway killed mid-upload and restarted resumes from the chunk receipt: no stored chunk is sent again, the file is byte-identical', async () => {
  const { id, storedBeforeRestart, restart } = await killMidUpload(dbPath);
  const killedAt = await restart();
  const final = await harness.client.waitFor(id);
  expect(final.state, JSON.stringify(final)).toBe('completed');
  if (final.result?.kind !== 'file') throw new Error('expected a file');

  const afterRestart = proxy.log.slice(killedAt).filter((entry) => entry.method === 'PUT');
  const resent = afterRestart
    .map((entry) => chunkIndex(entry.path))
    .filter((i) => storedBeforeRestart.has(i));
  expect(resent, 'chunks the server had acked were PUT again').toEqual([]);
  // The restarted run read the receipt before it sent anything.
  expect(
    proxy.log.slice(killedAt).some((entry) => entry.method === 'GET' && entry.path.endsWith(`/${id}/chunks`)),
  ).toBe(true);
  // Every chunk of the file was stored exactly once, across both runs.
  const stored = chunkPuts()
    .filter((entry) => entry.status === 201)
    .map((entry) => chunkIndex(entry.path))
    .sort((a, b) => a - b);
  const chunkCount = Math.ceil(final.result.size / CHUNK_SIZE);
  expect(stored).toEqual(Array.from({ length: chunkCount }, (_, i) => i));
  expect(chunkCount).toBeGreaterThan(LET_THROUGH + 8);

  const downloaded = Buffer.from(await (await fetch(final.result.url)).arrayBuffer());
  const source = createSqliteDataSource({ filename: dbPath });
  const pieces: Uint8Array[] = [];
  for await (const piece of encodeCursorAsParquet(
    await source.query({ sql: SQL, params: [], columnar: true }),
  ))
    pieces.push(piece);
  await source.close();
  expect(Buffer.compare(Buffer.concat(pieces), downloaded)).toBe(0);
  expect((await createChecksummer()).digest(downloaded)).toBe(final.result.checksum);
});

it('a restarted gateway whose query no longer gives the same bytes is refused (409) and the command fails: no file, no URL', async () => {
  const changing = join(dir, 'orders-changing.sqlite');
  copyFileSync(dbPath, changing);
  const { id, storedBeforeRestart, restart } = await killMidUpload(changing);
  expect(storedBeforeRestart.has(0)).toBe(true);
  // Between the runs the data changes under the first chunk: the first column's first value
  // (the file starts with it), so the re-encoded chunk 0 differs from the stored one.
  const db = new Database(changing);
  db.prepare('UPDATE orders SET id = 0 WHERE id = 1').run();
  db.close();

  const killedAt = await restart();
  const final = await harness.client.waitFor(id);
  expect(final.state).toBe('failed');
  expect(final.error?.code).toBe('chunk-conflict');
  expect(final.result).toBeUndefined();
  const conflicts = proxy.log
    .slice(killedAt)
    .filter((entry) => entry.method === 'PUT' && entry.status === 409);
  expect(conflicts.map((entry) => chunkIndex(entry.path))).toContain(0);
  expect(existsSync(join(harness.storageRoot, 'results', gatewayId, `${id}.parquet`))).toBe(false);
});
