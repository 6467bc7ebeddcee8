import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulClient } from '@backhaul/client';
import { type CommandStore, createMemoryCommandStore } from '@backhaul/core';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { countingSource } from '../support/counting-source.js';
import { type FaultProxy, type RequestFault, startFaultProxy } from '../support/fault-proxy.js';
import { callerToken, gatewayId, type Harness, startHarness } from '../support/harness.js';

/**
 * `client.submit` retries under one `Idempotency-Key` (docs/protocol.md §3.1): a POST whose answer
 * was lost on the way back, or that a load balancer refused with 503, is sent again with the same
 * key, and the server creates the query once. Real server, real gateway, real sockets; the faults
 * come from the HTTP fault proxy between the client and the server. The crash of a server process
 * between persisting and answering is in restart-and-failover.test.ts.
 */

const SQL = 'SELECT id, name FROM items ORDER BY id';
const ROWS = [
  [1, 'one'],
  [2, 'two'],
];

let dir: string;
let harness: Harness | undefined;
let proxy: FaultProxy | undefined;
let store: CommandStore | undefined;
let source: ReturnType<typeof countingSource> | undefined;
afterEach(async () => {
  await proxy?.close();
  await harness?.close();
  await source?.close();
  source = undefined;
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
  proxy = harness = store = undefined;
});

/** A server with a connected gateway over SQLite, and a fault proxy choosing by POST number. */
async function setUp(faults: RequestFault[]) {
  dir = mkdtempSync(join(tmpdir(), 'backhaul-idempotent-'));
  const sqlitePath = join(dir, 'items.sqlite');
  const db = new Database(sqlitePath);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
  for (const row of ROWS) db.prepare('INSERT INTO items (id, name) VALUES (?, ?)').run(...row);
  db.close();
  store = createMemoryCommandStore();
  harness = await startHarness({ sqlitePath, store });
  source = countingSource(createSqliteDataSource({ filename: sqlitePath }));
  await harness.startGateway({ dataSource: source });
  let posts = 0;
  proxy = await startFaultProxy(harness.url, (method) => (method === 'POST' ? faults[posts++] : undefined));
  const client = createBackhaulClient({
    url: proxy.url,
    token: callerToken,
    submitRetry: { baseDelayMs: 10, maxDelayMs: 50 },
  });
  return { client, source, proxy };
}

const submits = (p: FaultProxy) => p.log.filter((entry) => entry.path === '/v1/queries');

it('an answer lost on the way back: the client sends the POST again under the same key, and the query is created and run once', async () => {
  const { client, source, proxy } = await setUp(['lose-answer']);
  const view = await client.submit({ gatewayId, sql: SQL, mode: 'rows' });

  const posts = submits(proxy);
  expect(posts.map((entry) => entry.status)).toEqual([202, 202]);
  const keys = posts.map((entry) => entry.headers['idempotency-key']);
  expect(keys[0]).toMatch(/^"[0-9a-f-]{36}"$/);
  expect(keys[1]).toBe(keys[0]);

  const final = await client.waitFor(view.id);
  expect(final.state).toBe('completed');
  expect((await client.rows(view.id)).rows).toEqual(ROWS);
  expect(source.queries).toEqual([SQL]);
  // The store holds that one command: nothing left to deliver, and its record is the one answered.
  expect(await store!.listUndelivered(gatewayId)).toEqual([]);
  expect((await store!.get(view.id))?.state).toBe('completed');
});

it('a 503 from a load balancer: retried after its Retry-After with the same key; a key given by the caller is sent as given', async () => {
  const { client, proxy } = await setUp(['unavailable', 'unavailable']);
  const view = await client.submit({ gatewayId, sql: SQL, mode: 'rows' }, { idempotencyKey: 'order-4711' });
  const posts = submits(proxy);
  expect(posts.map((entry) => entry.status)).toEqual([503, 503, 202]);
  expect(posts.map((entry) => entry.headers['idempotency-key'])).toEqual(Array(3).fill('"order-4711"'));

  // The caller repeating its own submit (say, after it restarted) gets the same query back.
  const again = await client.submit({ gatewayId, sql: SQL, mode: 'rows' }, { idempotencyKey: 'order-4711' });
  expect(again.id).toBe(view.id);
  // Another query under that key is refused, not retried.
  await expect(
    client.submit({ gatewayId, sql: 'SELECT 1', mode: 'rows' }, { idempotencyKey: 'order-4711' }),
  ).rejects.toMatchObject({ code: 'idempotency-key-reused', status: 422 });
  expect(submits(proxy)).toHaveLength(5);
});

it('the retries are bounded: after maxAttempts 503s the client gives up with the 503', async () => {
  const { proxy } = await setUp(Array(10).fill('unavailable'));
  const client = createBackhaulClient({
    url: proxy.url,
    token: callerToken,
    submitRetry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
  });
  await expect(client.submit({ gatewayId, sql: SQL, mode: 'rows' })).rejects.toMatchObject({
    code: 'service-unavailable',
    status: 503,
  });
  expect(submits(proxy)).toHaveLength(3);
  // Each submit call has its own key: two calls, two keys.
  await client.submit({ gatewayId, sql: SQL, mode: 'rows' }).catch(() => undefined);
  const keys = new Set(submits(proxy).map((entry) => entry.headers['idempotency-key']));
  expect(keys.size).toBe(2);
});
