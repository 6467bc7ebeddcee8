import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChecksummer } from '@backhaul/core';
import { encodeCursorAsParquet } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { openDuckDb } from '../support/duckdb-reader.js';
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
const AUTO_ROWS_BYTE_LIMIT = 1_000_000;

let dir: string;
let dbPath: string;
let harness: Harness;
let proxy: FaultProxy;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'backhaul-resume-'));
  dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), 60_000).path;
  // rowsByteLimit: an auto query of the table sends a few 1000-row batches live, then a file.
  harness = await startHarness({
    sqlitePath: dbPath,
    server: { chunkSize: CHUNK_SIZE, rowsByteLimit: AUTO_ROWS_BYTE_LIMIT },
  });
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
async function killMidUpload(sqlitePath: string, mode: 'file' | 'auto' = 'file') {
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
  const { id } = await harness.client.submit({ gatewayId, sql: SQL, mode });
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

it('an auto query whose gateway is killed after the switch: the restarted run sends its live head again (accepted and ignored), resumes the file, and callers are told the same live rows once', async () => {
  const { id, storedBeforeRestart, restart } = await killMidUpload(dbPath, 'auto');
  const switched = await harness.client.get(id);
  const liveRows = switched.liveRows ?? 0;
  expect(liveRows).toBeGreaterThan(0);
  const killedAt = await restart();
  const final = await harness.client.waitFor(id);
  expect(final.state, JSON.stringify(final)).toBe('completed');
  if (final.result?.kind !== 'file') throw new Error('expected a file');
  expect(final.liveRows).toBe(liveRows);

  // The second run posted its live batches again: each taken as a repeat (204), none refused.
  const rowPosts = proxy.log
    .slice(killedAt)
    .filter((entry) => entry.method === 'POST' && entry.path.endsWith('/rows'));
  expect(rowPosts.length).toBeGreaterThan(0);
  expect(new Set(rowPosts.map((entry) => entry.status))).toEqual(new Set([204]));
  const resent = proxy.log
    .slice(killedAt)
    .filter((entry) => entry.method === 'PUT')
    .map((entry) => chunkIndex(entry.path))
    .filter((i) => storedBeforeRestart.has(i));
  expect(resent, 'chunks the server had acked were PUT again').toEqual([]);

  // A follower now: the live rows once, the switch, the result; the file holds every row in order.
  const live: unknown[][] = [];
  const kinds: string[] = [];
  for await (const event of harness.client.follow(id)) {
    if (event.type === 'rows') live.push(...event.rows);
    if (event.type !== 'progress') kinds.push(event.type);
  }
  expect(live).toHaveLength(liveRows);
  expect(kinds.filter((kind) => kind === 'switched')).toHaveLength(1);
  const duck = await openDuckDb();
  try {
    const file = await duck.file(new Uint8Array(await (await fetch(final.result.url)).arrayBuffer()));
    const ids = (
      await duck.query(
        `SELECT id FROM read_parquet('${file}', file_row_number = true) ORDER BY file_row_number`,
      )
    ).map((row) => Number(row.id));
    const source = new Database(dbPath, { readonly: true });
    const expected = (source.prepare('SELECT id FROM orders ORDER BY id').raw(true).all() as [number][]).map(
      ([value]) => value,
    );
    source.close();
    expect(ids).toEqual(expected);
    expect(live.map((row) => Number(row[0]))).toEqual(expected.slice(0, liveRows));
  } finally {
    duck.close();
  }
});
