import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { QueryAbortedError, QueryCancelledError } from '@backhaul/client';
import {
  applyDeliveryEvent,
  BackhaulError,
  createMemoryCommandStore,
  type DataSource,
  defaultDeliveryPolicy,
  type QueryView,
} from '@backhaul/core';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { callerToken, gatewayId, type Harness, startHarness } from '../support/harness.js';
import {
  describeWithServices,
  mysqlAdmin,
  mysqlService,
  mysqlUrl,
  postgresAdmin,
  postgresService,
  postgresUrl,
  uniqueName,
} from '../support/production-services.js';
import { until } from '../support/until.js';

// DELETE /v1/queries/{id} (docs/protocol.md §3.8) end to end: the server marks the query
// cancelled, the gateway gets a cancel message on its command stream and stops the statement on
// the database itself, the upload stops and the staged parts are deleted. Each database test
// asserts the statement is gone from the database (polled, bounded) and prints how long that took.

/** An endless SQLite query that yields rows as it goes: the Parquet file grows until cancelled. */
const endlessSqlite =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x, 'row-' || x AS label FROM c";

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** Files the filesystem storage still holds: staged upload parts and finished objects. */
function storedFiles(root: string): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)],
    );
  return walk(root);
}

/**
 * Cancels a running query through the HTTP API and waits (bounded) until `gone` says the
 * database no longer runs it; returns the cancelled view and the milliseconds the drop took.
 */
async function cancelUntilGone(
  h: Harness,
  id: string,
  gone: () => Promise<boolean>,
  label: string,
): Promise<{ view: QueryView; dropMs: number }> {
  const started = performance.now();
  const response = await fetch(`${h.url}/v1/queries/${id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${callerToken}` },
  });
  expect(response.status).toBe(200);
  const view = (await response.json()) as QueryView;
  expect(view.state).toBe('cancelled');
  await until(gone, `${label}: the database to drop the cancelled statement`, 10_000);
  const dropMs = performance.now() - started;
  console.info(`[cancel] ${label}: the database dropped the statement ${dropMs.toFixed(0)} ms after DELETE`);
  return { view, dropMs };
}

/** What every cancelled query answers afterwards: the same view again, a typed result problem. */
async function expectSettledCancel(h: Harness, id: string, view: QueryView): Promise<void> {
  expect(await h.client.cancel(id)).toEqual(view);
  expect((await h.client.get(id)).state).toBe('cancelled');
  const result = await fetch(`${h.url}/v1/queries/${id}/result`, {
    headers: { authorization: `Bearer ${callerToken}` },
  });
  expect(result.status).toBe(409);
  expect(result.headers.get('content-type')).toContain('application/problem+json');
  expect(await result.json()).toMatchObject({ code: 'cancelled', queryState: 'cancelled', retryable: false });
  await expect(h.client.rows(id)).rejects.toBeInstanceOf(QueryCancelledError);
}

describeWithServices([postgresService], 'cancel on PostgreSQL', () => {
  it('a running pg_sleep is cancelled on the server: pg_stat_activity shows it gone', async () => {
    const marker = uniqueName('cancel_pg');
    let source: DataSource | undefined;
    harness = await startHarness({
      dataSource: () => {
        source = createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 });
        return source;
      },
    });
    await harness.startGateway();
    const active = async () =>
      Number(
        (
          await postgresAdmin<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity
             WHERE state = 'active' AND query LIKE '%${marker}%' AND pid <> pg_backend_pid()`,
          )
        )[0]?.n,
      );
    const { id } = await harness.client.submit({
      gatewayId,
      sql: `SELECT 1 AS pause /* ${marker} */ FROM pg_sleep(600)`,
      mode: 'rows',
    });
    await until(async () => (await active()) === 1, 'pg_sleep to be running');
    const { view } = await cancelUntilGone(harness, id, async () => (await active()) === 0, 'PostgreSQL');
    await expectSettledCancel(harness, id, view);
    // The gateway's connection went back to the pool: the next query runs.
    const next = await harness.client.run({ gatewayId, sql: 'SELECT 42 AS answer', mode: 'rows' });
    expect(next.rows?.rows).toEqual([[42]]);
    expect(storedFiles(harness.storageRoot)).toEqual([]);
  });
});

describeWithServices([mysqlService], 'cancel on MariaDB/MySQL', () => {
  it('a running SLEEP is killed (KILL QUERY): the processlist shows it gone', async () => {
    const marker = uniqueName('cancel_my');
    harness = await startHarness({
      dataSource: () => createMysqlDataSource({ uri: mysqlUrl, poolSize: 2 }),
    });
    await harness.startGateway();
    const running = async () =>
      Number(
        (
          await mysqlAdmin<{ n: number }[]>(
            `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST
             WHERE INFO LIKE '%${marker}%' AND ID <> CONNECTION_ID()`,
          )
        )[0]?.n,
      );
    const { id } = await harness.client.submit({
      gatewayId,
      sql: `SELECT SLEEP(600) AS pause /* ${marker} */`,
      mode: 'rows',
    });
    await until(async () => (await running()) === 1, 'SLEEP to be running');
    const { view } = await cancelUntilGone(harness, id, async () => (await running()) === 0, 'MariaDB');
    await expectSettledCancel(harness, id, view);
    const next = await harness.client.run({ gatewayId, sql: 'SELECT 42 AS answer', mode: 'rows' });
    expect(next.rows?.rows.map((row) => row.map(Number))).toEqual([[42]]);
    expect(storedFiles(harness.storageRoot)).toEqual([]);
  });
});

/**
 * SQLite through a wrapper that tells when the gateway's cursor was closed: closing resets the
 * statement (better-sqlite3's iterator return), which is SQLite's end of it.
 */
function observedSqlite(): { source: DataSource; running: () => number } {
  const inner = createSqliteDataSource({ filename: ':memory:' });
  let open = 0;
  return {
    running: () => open,
    source: {
      ...inner,
      async query(request) {
        const cursor = await inner.query(request);
        open++;
        let closed = false;
        const close = async () => {
          await cursor.close();
          if (!closed) open--;
          closed = true;
        };
        return {
          columns: cursor.columns,
          async *batches(size) {
            try {
              yield* cursor.batches(size);
            } finally {
              await close();
            }
          },
          close,
        };
      },
      close: () => inner.close(),
    },
  };
}

describe('cancel on SQLite', () => {
  it('an endless file query stops between rows, its upload stops and the staged parts are deleted', async () => {
    const sqlite = observedSqlite();
    harness = await startHarness({ dataSource: () => sqlite.source });
    await harness.startGateway({ dataSource: sqlite.source });
    const root = harness.storageRoot;
    const { id } = await harness.client.submit({ gatewayId, sql: endlessSqlite, mode: 'file' });
    // Under way for real: a 5 MiB part is staged in storage.
    await until(() => storedFiles(root).length > 0, 'a staged upload part', 30_000);
    expect(sqlite.running()).toBe(1);
    const { view } = await cancelUntilGone(harness, id, async () => sqlite.running() === 0, 'SQLite');
    await until(() => storedFiles(root).length === 0, 'the staged parts to be deleted');
    await expectSettledCancel(harness, id, view);
  });

  it('a gateway that missed the cancel message stops on the refusal of its next progress report', async () => {
    const sqlite = observedSqlite();
    const store = createMemoryCommandStore();
    harness = await startHarness({ dataSource: () => sqlite.source, store });
    await harness.startGateway({ dataSource: sqlite.source, progressIntervalMs: 100 });
    const { id } = await harness.client.submit({ gatewayId, sql: endlessSqlite, mode: 'file' });
    await until(() => sqlite.running() === 1, 'the statement to run');
    // Cancelled in the store only, as if the cancel event was lost with the gateway's stream.
    await applyDeliveryEvent(store, id, { type: 'cancel' }, defaultDeliveryPolicy);
    await until(() => sqlite.running() === 0, 'the gateway to stop the statement');
    expect((await harness.client.get(id)).state).toBe('cancelled');
  });

  it('DELETE twice gives the same answer; DELETE of a finished query is 409 and keeps its result', async () => {
    harness = await startHarness({ dataSource: () => createSqliteDataSource({ filename: ':memory:' }) });
    await harness.startGateway();
    const done = await harness.client.run({ gatewayId, sql: 'SELECT 7 AS seven', mode: 'rows' });
    const refused = await fetch(`${harness.url}/v1/queries/${done.query.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${callerToken}` },
    });
    expect(refused.status).toBe(409);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(await refused.json()).toMatchObject({ code: 'invalid-state', queryState: 'completed' });
    expect((await harness.client.rows(done.query.id)).rows).toEqual([[7]]);

    const unknown = await fetch(`${harness.url}/v1/queries/no-such-query`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${callerToken}` },
    });
    expect(unknown.status).toBe(404);

    const { id } = await harness.client.submit({ gatewayId, sql: endlessSqlite, mode: 'file' });
    const events: string[] = [];
    const following = harness.client.waitFor(id, { onEvent: (event) => events.push(event.type) });
    const first = await harness.client.cancel(id);
    const second = await harness.client.cancel(id);
    expect(second).toEqual(first);
    expect((await following).state).toBe('cancelled');
    // The live stream says so before its final result event.
    expect(events.slice(-2)).toEqual(['cancelled', 'result']);
  });

  it('a queued query is cancelled at once and leaves its queue place', async () => {
    harness = await startHarness({
      dataSource: () => createSqliteDataSource({ filename: ':memory:' }),
      admission: { small: 1, gatewayShare: 1, callerShare: 1 },
    });
    // No gateway: the first query stays pending and holds the only small slot.
    const holder = await harness.client.submit({ gatewayId, sql: 'SELECT 1', mode: 'rows' });
    const queued = await harness.client.submit({
      gatewayId,
      sql: 'SELECT 2',
      mode: 'rows',
      whenBusy: 'queue',
    });
    expect(queued.state).toBe('queued');
    expect((await harness.client.cancel(queued.id)).state).toBe('cancelled');
    expect(harness.server.admission().classes.small.queued).toBe(0);
    // A pending one (never acknowledged) too; its slot is free for the next query.
    expect((await harness.client.cancel(holder.id)).state).toBe('cancelled');
    expect(harness.server.admission().classes.small.inUse).toBe(0);
  });

  it('client.run: aborting its signal cancels the query on the server', async () => {
    harness = await startHarness({ dataSource: () => createSqliteDataSource({ filename: ':memory:' }) });
    await harness.startGateway();
    const controller = new AbortController();
    let id: string | undefined;
    const running = harness.client.run(
      { gatewayId, sql: endlessSqlite, mode: 'file' },
      {
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'state') id = event.query.id;
          if (event.type === 'progress' && (event.progress.bytes ?? 0) > 0)
            controller.abort(new Error('enough'));
        },
      },
    );
    const failure = await running.catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryAbortedError);
    expect(failure).toMatchObject({ name: 'AbortError', cancelled: true, queryId: id });
    expect(id).toBeDefined();
    expect((await harness.client.get(id as string)).state).toBe('cancelled');
    await until(
      () => storedFiles(harness?.storageRoot as string).length === 0,
      'the staged parts to be deleted',
    );
  });

  it('follow with an aborted signal stops waiting and leaves the query running', async () => {
    harness = await startHarness({ dataSource: () => createSqliteDataSource({ filename: ':memory:' }) });
    const { id } = await harness.client.submit({ gatewayId, sql: 'SELECT 1', mode: 'rows' });
    const controller = new AbortController();
    const waiting = harness.client.waitFor(id, {
      signal: controller.signal,
      onEvent: () => controller.abort(new Error('stop waiting')),
    });
    const failure = await waiting.catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryAbortedError);
    expect(failure).toMatchObject({ cancelled: false, queryId: id });
    expect(BackhaulError.isInstance(failure)).toBe(false);
    expect((await harness.client.get(id)).state).toBe('pending');
  });
});
