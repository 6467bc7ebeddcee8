import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QueryView } from '@backhaul/core';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createRedisCommandStore, type RedisCommandStore } from '@backhaul/store-redis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { countingSource } from '../support/counting-source.js';
import { callerToken, gatewayId, type Harness, startHarness } from '../support/harness.js';
import { type PrivateRedis, redisServerBinary, startPrivateRedis } from '../support/private-redis.js';
import { until } from '../support/until.js';

/**
 * Redis crashes in the middle of a run and comes back. The Redis is the test's own
 * (test/support/private-redis.ts: a free port, `appendonly yes`, `appendfsync always`), never the
 * shared one. While it is down, callers get a prompt 503 problem with Retry-After, not a 500 and
 * not a hang; every command a caller was answered 202 for before, during or after the outage
 * completes, and each runs once.
 */

const ROWS = 500;
let dir: string;
let dbPath: string;
let redis: PrivateRedis;
let store: RedisCommandStore;
let harness: Harness;

redisServerBinary.describe('Redis restarted in the middle of a run', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-redis-restart-'));
    dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), ROWS).path;
    redis = await startPrivateRedis(dir);
    store = createRedisCommandStore({ url: redis.url, keyPrefix: 'backhaul-restart:' });
    harness = await startHarness({ sqlitePath: dbPath, store });
  });
  afterAll(async () => {
    await harness?.close();
    await store?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (body: object) =>
    fetch(`${harness.url}/v1/queries`, {
      method: 'POST',
      headers: { authorization: `Bearer ${callerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const query = (n: number) => ({ gatewayId, sql: `SELECT count(*) + ${n} AS n FROM orders`, mode: 'rows' });

  /** Submits until accepted; returns the ids of every 202, and the statuses seen before. */
  const submitAll = async (numbers: number[]) => {
    const ids = new Map<number, string>();
    for (const n of numbers) {
      const response = await post(query(n));
      expect(response.status).toBe(202);
      ids.set(n, ((await response.json()) as QueryView).id);
    }
    return ids;
  };

  it('no acknowledged command is lost; callers get 503 with Retry-After while it is down; work resumes after', async () => {
    const source = countingSource(createSqliteDataSource({ filename: dbPath }));
    await harness.startGateway({ dataSource: source, reconnect: { baseDelayMs: 20, maxDelayMs: 200 } });

    // Before: accepted, and left to run while Redis goes down under them.
    const before = await submitAll([1, 2, 3, 4, 5]);
    await redis.crash();

    // During: a prompt, typed, retryable refusal.
    const refused = await post(query(100));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ code: 'service-unavailable', retryable: true });
    const read = await fetch(`${harness.url}/v1/queries/${before.get(1)}`, {
      headers: { authorization: `Bearer ${callerToken}` },
    });
    expect(read.status).toBe(503);
    expect(read.headers.get('retry-after')).not.toBeNull();
    await read.body?.cancel();

    // After: the same port and directory; the AOF brings every acknowledged write back.
    await redis.restart();
    await until(
      async () => (await harness.client.get(before.get(1)!).catch(() => undefined)) !== undefined,
      'the server to read Redis again',
    );
    const after = await submitAll([6, 7, 8]);

    for (const [n, id] of [...before, ...after]) {
      const final = await until(async () => {
        const view = await harness.client.get(id).catch(() => undefined);
        return view && ['completed', 'failed', 'expired', 'dead-lettered'].includes(view.state)
          ? view
          : undefined;
      }, `query ${n} to end`);
      expect(final.state, JSON.stringify(final)).toBe('completed');
      expect((await harness.client.rows(id)).rows).toEqual([[ROWS + n]]);
    }
    // Each accepted command ran once; the one refused with 503 never existed.
    const ran = source.queries.filter((sql) => sql.includes('count(*) +'));
    expect(ran.sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => query(n).sql).sort());
    await source.close();
  });
});
