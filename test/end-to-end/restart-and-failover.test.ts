import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulClient } from '@backhaul/client';
import type { QueryView } from '@backhaul/core';
import { createGateway, type Gateway, type GatewayEvent } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createRedisCommandStore } from '@backhaul/store-redis';
import Database from 'better-sqlite3';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { afterEach, expect, it } from 'vitest';
import {
  deleteKeys,
  redisService,
  redisUrl,
  uniqueKeyPrefix,
} from '../../packages/store-redis/test/redis-service.js';
import { countingSource } from '../support/counting-source.js';
import {
  freePort,
  processCallerToken,
  processGatewayId,
  processGatewayToken,
  type ServerProcess,
  type ServerProcessOptions,
  startServerProcess,
} from '../support/server-processes.js';
import { until } from '../support/until.js';

/**
 * Crash and failover of real server processes on one Redis: each server is
 * test/support/server-process.ts in a child process, crashed by a failpoint
 * (packages/server-node/src/failpoints.ts, SIGKILL at an exact step) and started again on the
 * same port and key prefix. Needs Redis; skips loudly without it, fails with
 * BACKHAUL_REQUIRE_SERVICES=1.
 */

const ROWS = Array.from({ length: 25 }, (_, i) => [i + 1, `item-${i + 1}`, (i + 1) * 1.5]);
const SQL = 'SELECT id, name, price FROM items ORDER BY id';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** POST /v1/queries as a caller; the raw fetch, so a connection reset is seen as it is. */
function submit(url: string, body: object): Promise<Response> {
  return fetch(`${url}/v1/queries`, {
    method: 'POST',
    headers: { authorization: `Bearer ${processCallerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** What a request that died with the process rejects with (undici: "fetch failed", cause: reset). */
function describeFailure(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return `${(error as Error).message} (${cause?.code ?? cause?.message ?? 'no cause'})`;
}

/** Submits to a server armed with a failpoint: the POST dies with the process, never answered. */
async function submitIntoCrash(server: ServerProcess): Promise<void> {
  const failure = await submit(server.url, { gatewayId: processGatewayId, sql: SQL, mode: 'rows' }).then(
    (response) => `answered ${response.status}`,
    describeFailure,
  );
  expect(failure).toMatch(/fetch failed|other side closed|ECONNRESET|socket/i);
  expect(await server.exited).toEqual({ code: null, signal: 'SIGKILL' });
}

interface ReceivedCommand {
  server: string;
  id: string;
  delivery: number;
}

/**
 * A raw SSE client playing a gateway on one server's command stream: records every `command`
 * event and never acks. Resolves once the server's `hello` arrived.
 */
async function openRawStream(
  server: string,
  url: string,
  received: ReceivedCommand[],
  signal: AbortSignal,
): Promise<void> {
  const response = await fetch(`${url}/v1/gateway/commands`, {
    headers: { authorization: `Bearer ${processGatewayToken}`, accept: 'text/event-stream' },
    signal,
  });
  expect(response.status).toBe(200);
  if (!response.body) throw new Error('no body');
  const events = response.body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream());
  const reader = events.getReader();
  let hello = false;
  while (!hello) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${server}: the stream ended before hello`);
    hello = value.event === 'hello';
  }
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        if (value.event !== 'command') continue;
        const command = JSON.parse(value.data) as { id: string; delivery: number };
        received.push({ server, id: command.id, delivery: command.delivery });
      }
    } catch {
      // aborted at the end of the test
    }
  })();
}

redisService.describe('server processes on Redis: restart and failover', () => {
  let dir: string;
  let dbPath: string;
  let prefix: string;
  const processes: ServerProcess[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];

  const start = async (options: Omit<ServerProcessOptions, 'prefix' | 'storageDir' | 'redisUrl'>) => {
    const server = await startServerProcess({
      log: process.env.BACKHAUL_TEST_SERVER_LOG === '1', // the servers' logs on stderr
      prefix,
      storageDir: join(dir, 'storage'),
      redisUrl,
      ...options,
    });
    processes.push(server);
    return server;
  };

  const setUp = () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-restart-'));
    prefix = uniqueKeyPrefix();
    dbPath = join(dir, 'items.sqlite');
    const db = new Database(dbPath);
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL)');
    const insert = db.prepare('INSERT INTO items (id, name, price) VALUES (?, ?, ?)');
    for (const row of ROWS) insert.run(...row);
    db.close();
  };

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await Promise.all(processes.splice(0).map((server) => server.stop()));
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A real gateway with a counting SQLite source and fast reconnects. */
  const startGateway = async (serverUrl: string) => {
    const source = countingSource(createSqliteDataSource({ filename: dbPath }));
    const gateway: Gateway = createGateway({
      serverUrl,
      token: processGatewayToken,
      dataSource: source,
      reconnect: { baseDelayMs: 50, maxDelayMs: 200 },
    });
    const events: GatewayEvent[] = [];
    gateway.on((event) => events.push(event));
    await gateway.start();
    cleanups.push(async () => {
      await gateway.stop();
      await source.close();
    });
    return { gateway, source, events };
  };

  /** The command the crashed server persisted: the one record of the gateway in Redis. */
  const persistedCommand = async () => {
    const store = createRedisCommandStore({ url: redisUrl, keyPrefix: prefix });
    try {
      const undelivered = await store.listUndelivered(processGatewayId);
      expect(undelivered).toHaveLength(1);
      return undelivered[0]!;
    } finally {
      await store.close();
    }
  };

  /** The caller's side after the restart: poll until completed, read the rows. */
  const awaitCompletedRows = async (url: string, id: string) => {
    const client = createBackhaulClient({ url, token: processCallerToken });
    const view = await until<QueryView>(async () => {
      const current = await client.get(id);
      if (current.state === 'failed' || current.state === 'dead-lettered' || current.state === 'expired')
        throw new Error(`query ended ${current.state}: ${JSON.stringify(current)}`);
      return current.state === 'completed' ? current : undefined;
    }, `query ${id} to complete`);
    return { view, result: await client.rows(id) };
  };

  it('the server process is killed after a command is persisted and before it is sent; after restart the command is delivered and run once', async () => {
    setUp();
    const port = await freePort();
    const first = await start({ port, failpoints: 'after-persist', sweepIntervalMs: 50 });
    const { gateway, source, events } = await startGateway(first.url);

    // The POST dies with the process: persisted, never answered, never sent.
    await submitIntoCrash(first);

    const record = await persistedCommand();
    expect(record.state).toBe('pending');
    expect(record.command.sql).toBe(SQL);
    expect(events.some((event) => event.type === 'command')).toBe(false);
    await until(() => (gateway.connected ? undefined : true), 'the gateway to notice the crash');

    // Same port, same prefix, no failpoint: the gateway reconnects by itself and is sent the command.
    const second = await start({ port, sweepIntervalMs: 50 });
    const { view, result } = await awaitCompletedRows(second.url, record.id);
    expect(view.state).toBe('completed');
    expect(result.columns.map((column) => column.name)).toEqual(['id', 'name', 'price']);
    expect(result.rows).toEqual(ROWS);
    await sleep(300); // a second run would have started by now
    expect(source.queries).toEqual([SQL]);
  });

  /** How many command records the prefix holds in Redis, whatever their state. */
  const commandRecords = async () => {
    const store = createRedisCommandStore({ url: redisUrl, keyPrefix: prefix });
    try {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await store.redis.scan(cursor, 'MATCH', `${prefix}cmd:*`, 'COUNT', 500);
        cursor = next;
        found.push(...keys);
      } while (cursor !== '0');
      return found;
    } finally {
      await store.close();
    }
  };

  it('the server process is killed after persisting a submit; the client retries it under its Idempotency-Key after the restart and gets that one command, run once', async () => {
    setUp();
    const port = await freePort();
    const first = await start({ port, failpoints: 'after-persist', sweepIntervalMs: 50 });
    const { source } = await startGateway(first.url);
    // Retries until the restarted server answers (connection refused meanwhile); the signal is the bound.
    const client = createBackhaulClient({
      url: first.url,
      token: processCallerToken,
      submitRetry: { maxAttempts: 10_000, baseDelayMs: 50, maxDelayMs: 200 },
    });
    const submitted = client.submit(
      { gatewayId: processGatewayId, sql: SQL, mode: 'rows' },
      { signal: AbortSignal.timeout(60_000) },
    );
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const record = await persistedCommand();
    expect(record.state).toBe('pending');

    const second = await start({ port, sweepIntervalMs: 50 });
    const view = await submitted;
    expect(view.id).toBe(record.id);
    const { result } = await awaitCompletedRows(second.url, record.id);
    expect(result.rows).toEqual(ROWS);
    await sleep(300); // a second run would have started by now
    expect(source.queries).toEqual([SQL]);
    expect(await commandRecords()).toEqual([`${prefix}cmd:${record.id}`]);
  });

  it('the server process is killed right after it sent a command; after restart the gateway is sent it again and runs it once', async () => {
    setUp();
    const port = await freePort();
    const first = await start({ port, failpoints: 'after-send', sweepIntervalMs: 50 });
    const { source, events } = await startGateway(first.url);

    await submitIntoCrash(first);

    // Written to the stream, never acked: the store says dispatched.
    const record = await persistedCommand();
    expect(record.state).toBe('dispatched');

    const second = await start({ port, sweepIntervalMs: 50 });
    const { result } = await awaitCompletedRows(second.url, record.id);
    expect(result.rows).toEqual(ROWS);
    await sleep(300);
    expect(source.queries).toEqual([SQL]);
    // Whether or not the first copy got out before the crash, the resend on reconnect (§4) arrived.
    const copies = events.filter((event) => event.type === 'command' && event.command.id === record.id);
    expect(copies.length).toBeGreaterThanOrEqual(1);
    expect(copies.filter((event) => event.type === 'command' && !event.duplicate)).toHaveLength(1);
  });

  const deliveriesAcross = async (
    streamsOn: ('A' | 'B')[],
    submitOn: 'A' | 'B',
  ): Promise<{ received: ReceivedCommand[]; final: QueryView }> => {
    setUp();
    const options = { ackTimeoutMs: 300, sweepIntervalMs: 20, maxRedeliveries: 3 };
    const [a, b] = await Promise.all([
      start({ port: await freePort(), ...options }),
      start({ port: await freePort(), ...options }),
    ]);
    const servers = { A: a, B: b } as const;
    const received: ReceivedCommand[] = [];
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    // One gateway identity with a stream on each server, as behind a load balancer; it never acks.
    await Promise.all(
      streamsOn.map((name) => openRawStream(name, servers[name].url, received, abort.signal)),
    );
    // A stream that opens sends every command not yet acked (§4), so a command submitted while
    // a stream is still opening may rightly arrive on it twice. Let the openings finish first.
    await sleep(100);

    const response = await submit(servers[submitOn].url, {
      gatewayId: processGatewayId,
      sql: SQL,
      mode: 'rows',
    });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as QueryView;
    const client = createBackhaulClient({ url: servers[submitOn].url, token: processCallerToken });
    // 4 deliveries × 300 ms ack timeout, then the dead letter: about 1.3 s.
    const final = await until(
      async () => {
        const view = await client.get(id);
        return view.state === 'dead-lettered' ? view : undefined;
      },
      'the dead letter',
      5000,
    );
    await sleep(700); // a late duplicate from either server would arrive in this window
    return { received: received.filter((command) => command.id === id), final };
  };

  it('two server processes on one Redis with an expired ack: exactly one redelivers, each delivery goes out once', async () => {
    const { received, final } = await deliveriesAcross(['A', 'B'], 'A');
    const deliveries = received.map((command) => command.delivery).sort((x, y) => x - y);
    expect(deliveries, JSON.stringify(received)).toEqual([1, 2, 3, 4]);
    expect(final.state).toBe('dead-lettered');
    expect(final.error).toEqual({
      code: 'dead-lettered',
      message: expect.stringMatching(/no delivery ack after 4 deliveries/),
    });
    // The dead letter was written once, by the one server whose compare-and-set dead-lettered it.
    const store = createRedisCommandStore({ url: redisUrl, keyPrefix: prefix });
    try {
      expect((await store.listDeadLetters(10)).map((letter) => letter.id)).toEqual([final.id]);
    } finally {
      await store.close();
    }
  });

  it('a command submitted on one server and redelivered by either reaches the gateway connected only to the other', async () => {
    const { received, final } = await deliveriesAcross(['B'], 'A');
    expect(received.map((command) => command.delivery)).toEqual([1, 2, 3, 4]);
    expect(received.every((command) => command.server === 'B')).toBe(true);
    expect(final.state).toBe('dead-lettered');
  });
});
