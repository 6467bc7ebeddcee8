import type { RetryPolicy } from '@backhaul/core';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway, type GatewayEvent, type GatewayOptions } from '../src/index.js';
import { type FakeServer, type FakeServerOptions, startFakeServer, until } from './fake-server.js';
import { createOrdersDatabase } from './sqlite-fixture.js';

const fastRetry: RetryPolicy = { maxAttempts: 10, baseDelayMs: 5, maxDelayMs: 50 };

let database: ReturnType<typeof createOrdersDatabase>;
beforeAll(() => {
  database = createOrdersDatabase(2500);
});
afterAll(() => database.cleanup());

let server: FakeServer | undefined;
let gateway: Gateway | undefined;
afterEach(async () => {
  await gateway?.stop().catch(() => {});
  await server?.close();
  gateway = undefined;
  server = undefined;
});

async function setup(serverOptions: FakeServerOptions = {}, overrides: Partial<GatewayOptions> = {}) {
  server = await startFakeServer(serverOptions);
  const events: GatewayEvent[] = [];
  gateway = createGateway({
    serverUrl: server.url,
    token: 'good-token',
    dataSource: createSqliteDataSource({ filename: database.filename }),
    retry: fastRetry,
    reconnect: { baseDelayMs: 20, maxDelayMs: 200 },
    progressIntervalMs: 20,
    ...overrides,
  });
  gateway.on((event) => events.push(event));
  return { server, gateway, events };
}

describe('§4 command stream: the gateway dials out, says who it is and waits for hello', () => {
  it('start() resolves once the hello arrived, and emits connected', async () => {
    const { gateway, events } = await setup();
    await gateway.start();
    expect(gateway.connected).toBe(true);
    expect(events[0]).toMatchObject({ type: 'connected', hello: { gatewayId: 'gw-1' } });
  });

  it('§1 a bad token (401) makes start() reject instead of reconnecting forever', async () => {
    const { gateway, server } = await setup({}, { token: 'wrong-token' });
    await expect(gateway.start()).rejects.toMatchObject({ code: 'unauthorized' });
    expect(gateway.connected).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.connections).toHaveLength(0);
  });

  it('a preferredCodec the server does not accept fails start() loudly, naming what it accepts', async () => {
    const lz4Stub = {
      specificationVersion: 'v1' as const,
      name: 'lz4',
      encode: async (raw: Uint8Array) => raw,
      decode: async (encoded: Uint8Array) => encoded,
    };
    const { gateway } = await setup({}, { codecs: [lz4Stub], preferredCodec: 'lz4' });
    await expect(gateway.start()).rejects.toThrow(/preferredCodec 'lz4' is not accepted.*identity/);
  });

  it('§4 a stream silent for heartbeatTimeoutMs is dead: the gateway reconnects with Last-Event-ID', async () => {
    const { gateway, server, events } = await setup({}, { heartbeatTimeoutMs: 300 });
    await gateway.start();
    server.send({ id: 'cmd-before-cut', sql: 'SELECT count(*) AS n FROM orders' });
    await until(() => server.completions.has('cmd-before-cut'), 'the first command to complete');
    server.silence(); // socket stays open, no more heartbeats
    await until(() => server.connections.length >= 2, 'a reconnection', 5000);
    expect(server.connections[1]!.lastEventId).toBe('cmd-before-cut');
    expect(events.some((e) => e.type === 'disconnected')).toBe(true);
    await until(() => gateway.connected, 'the gateway to be connected again');
  });

  it('reconnects after the server closes the stream, and gets the commands it missed', async () => {
    const { gateway, server } = await setup();
    await gateway.start();
    server.connections[0]!.response.destroy();
    server.send({ id: 'cmd-while-away', sql: 'SELECT 1 AS one' });
    await until(() => server.completions.has('cmd-while-away'), 'the missed command to complete');
    expect(server.connections.length).toBeGreaterThanOrEqual(2);
  });
});

describe('§4.2 a command is recognised by its ID and never run twice', () => {
  it('a command delivered twice is acked twice and run once', async () => {
    const { gateway, server, events } = await setup();
    await gateway.start();
    server.send({ id: 'twice', sql: 'SELECT id FROM orders', mode: 'rows' });
    server.send({ id: 'twice', sql: 'SELECT id FROM orders', mode: 'rows' });
    await until(() => server.completions.has('twice') && server.acks.length === 2, 'completion and two acks');
    // And once more after it finished: still acked, still not run.
    server.send({ id: 'twice', sql: 'SELECT id FROM orders', mode: 'rows' });
    await until(() => server.acks.length === 3, 'a third ack');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const commandEvents = events.filter((e) => e.type === 'command');
    expect(commandEvents.map((e) => e.type === 'command' && e.duplicate)).toEqual([false, true, true]);
    expect(events.filter((e) => e.type === 'completed')).toHaveLength(1);
    expect(server.rows.get('twice')!.reduce((n, b) => n + b.rows.length, 0)).toBe(2500);
  });

  it('§2 a stream refused with 429 or 503 and Retry-After is not dialled again before it', async () => {
    const reconnects: number[] = [];
    const { gateway, server } = await setup(
      {},
      {
        logger: {
          info() {},
          error() {},
          warn: (message, data) => {
            if (message === 'command stream lost, reconnecting')
              reconnects.push((data as { delayMs: number }).delayMs);
          },
        },
      },
    );
    server.streamFault = (attempt) =>
      attempt === 1
        ? { status: 429, code: 'too-many-requests', retryable: true, retryAfter: '1' }
        : attempt === 2
          ? { status: 503, code: 'service-unavailable', retryable: true, retryAfter: '2' }
          : undefined;
    await gateway.start();
    // The backoff alone (20..200 ms) would have come back much sooner: the server's word wins.
    expect(reconnects).toEqual([1000, 2000]);
    expect(server.connections).toHaveLength(1);
  });

  it('an invalid command is logged and skipped; the gateway keeps working', async () => {
    const errors: string[] = [];
    const { gateway, server } = await setup(
      {},
      { logger: { info() {}, warn() {}, error: (message) => errors.push(message) } },
    );
    await gateway.start();
    server.connections[0]!.response.write('event: command\nid: junk\ndata: {"v":1,"id":"junk"}\n\n');
    server.connections[0]!.response.write('event: command\nid: junk2\ndata: not json\n\n');
    server.send({ id: 'after-junk', sql: 'SELECT 1 AS one' });
    await until(() => server.completions.has('after-junk'), 'the valid command to complete');
    expect(errors.filter((m) => m.includes('invalid command'))).toHaveLength(2);
    expect(server.acks).toEqual(['after-junk']);
  });
});

describe('§5.3 rows mode: batches go out as they come off the cursor, then complete', () => {
  it('posts batches in seq order with the columns on batch 0, and completes with the counts', async () => {
    const { gateway, server } = await setup({}, { rowBatchSize: 1000 });
    await gateway.start();
    server.send({
      id: 'rows-1',
      sql: 'SELECT id, customer, amount, paid, note FROM orders ORDER BY id',
      mode: 'rows',
    });
    await until(() => server.completions.has('rows-1'), 'completion');
    const batches = server.rows.get('rows-1')!;
    expect(batches.map((b) => b.seq)).toEqual([0, 1, 2]);
    expect(batches[0]!.columns!.map((c) => [c.name, c.type])).toEqual([
      ['id', 'int64'],
      ['customer', 'string'],
      ['amount', 'float64'],
      ['paid', 'boolean'],
      ['note', 'string'],
    ]);
    expect(batches[1]!.columns).toBeUndefined();
    expect(batches[0]!.rows[6]).toEqual([7, 'customer-7', 2.59, true, null]);
    expect(server.completions.get('rows-1')).toEqual({ kind: 'rows', rowCount: 2500, batchCount: 3 });
    expect(server.acks).toEqual(['rows-1']);
  });

  it('an empty result still sends batch 0 with the columns', async () => {
    const { gateway, server } = await setup();
    await gateway.start();
    server.send({ id: 'empty', sql: 'SELECT id FROM orders WHERE id < 0', mode: 'rows' });
    await until(() => server.completions.has('empty'), 'completion');
    expect(server.rows.get('empty')).toEqual([
      { seq: 0, columns: [{ name: 'id', type: 'int64', nullable: true }], rows: [] },
    ]);
    expect(server.completions.get('empty')).toEqual({ kind: 'rows', rowCount: 0, batchCount: 1 });
  });

  it("§5.6 a database error is reported with code 'query-failed'", async () => {
    const { gateway, server, events } = await setup();
    await gateway.start();
    server.send({ id: 'bad-sql', sql: 'SELECT nope FROM nowhere', mode: 'rows' });
    server.send({ id: 'write-sql', sql: 'DELETE FROM orders', mode: 'rows' });
    await until(() => server.failures.size === 2, 'two failures');
    expect(server.failures.get('bad-sql')).toMatchObject({
      code: 'query-failed',
      message: expect.stringContaining('nowhere'),
    });
    expect(server.failures.get('write-sql')).toMatchObject({ code: 'query-failed' });
    expect(events.filter((e) => e.type === 'failed')).toHaveLength(2);
  });

  it('§5.2 progress is posted while a command runs', async () => {
    const { gateway, server } = await setup(
      { chunkDelayMs: 30, hello: { chunkSize: 16_384 } },
      { progressIntervalMs: 10 },
    );
    await gateway.start();
    server.send({ id: 'slow-file', sql: 'SELECT * FROM orders', mode: 'file' });
    await until(() => server.completions.has('slow-file'), 'completion');
    const progress = server.progress.get('slow-file') ?? [];
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ stage: expect.any(String) });
  });
});
