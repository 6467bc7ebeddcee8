import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BackhaulError, type Logger } from '@backhaul/core';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { countingSource } from '../../../test/support/counting-source.js';
import { createGateway } from '../src/index.js';
import { until } from './fake-server.js';
import { createOrdersDatabase } from './sqlite-fixture.js';

/**
 * A broken or hostile server on the other end of the command stream (docs/protocol.md §4): a
 * tiny node:http server that says whatever each test scripts. The gateway must log a typed
 * error, never crash, never run anything it was not properly sent, and either reconnect with
 * backoff or stop with a clear error.
 */

interface HostileServer {
  url: string;
  /** Command-stream connections so far, and how many the gateway closed. */
  connections: number;
  closedByGateway: number;
  /** Every other request, as `METHOD /path`. */
  requests: string[];
}

type Script = (connection: number, res: ServerResponse) => void | Promise<void>;

async function startHostileServer(script: Script): Promise<HostileServer> {
  const state = { connections: 0, closedByGateway: 0, requests: [] as string[] };
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v1/gateway/commands') {
      const connection = ++state.connections;
      res.on('close', () => {
        if (!res.writableEnded) state.closedByGateway++;
      });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      void script(connection, res);
      return;
    }
    state.requests.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get connections() {
      return state.connections;
    },
    get closedByGateway() {
      return state.closedByGateway;
    },
    requests: state.requests,
  };
}

const hello = (overrides: Record<string, unknown> = {}) =>
  `event: hello\ndata: ${JSON.stringify({
    v: 1,
    gatewayId: 'gw-hostile',
    codecs: ['identity'],
    chunkSize: 65536,
    heartbeatMs: 1000,
    chunkWindow: 8,
    ...overrides,
  })}\n\n`;

const command = (id: string) =>
  `event: command\nid: ${id}\ndata: ${JSON.stringify({
    v: 1,
    id,
    type: 'query',
    sql: 'SELECT count(*) FROM orders',
    params: [],
    mode: 'rows',
    rowsByteLimit: 1_000_000,
    issuedAt: 1,
    delivery: 1,
  })}\n\n`;

interface LogEntry {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: { code?: unknown; error?: unknown } | undefined;
}

function recordingLogger(entries: LogEntry[]): Logger {
  return {
    info: (message, fields) => entries.push({ level: 'info', message, fields }),
    warn: (message, fields) => entries.push({ level: 'warn', message, fields }),
    error: (message, fields) => entries.push({ level: 'error', message, fields }),
  };
}

const codesLogged = (entries: LogEntry[]) =>
  entries.filter((entry) => entry.level !== 'info').map((entry) => entry.fields?.code);

/** Writes `total` bytes of `piece` in turn, honouring backpressure, until the peer goes away. */
async function flood(res: ServerResponse, piece: string, total: number): Promise<number> {
  let written = 0;
  while (written < total && !res.destroyed) {
    if (!res.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done).off('close', done);
          resolve();
        };
        res.on('drain', done).on('close', done);
      });
    }
    written += piece.length;
  }
  return written;
}

// One small database for the file; each test's gateway and server are torn down after it.
let database: ReturnType<typeof createOrdersDatabase>;
beforeAll(() => {
  database = createOrdersDatabase(10);
});
afterAll(() => database.cleanup());
function gatewayFor(url: string, log: LogEntry[], maxEventLength = 64 * 1024) {
  const source = countingSource(createSqliteDataSource({ filename: database.filename }));
  const gateway = createGateway({
    serverUrl: url,
    token: 'any-token',
    dataSource: source,
    reconnect: { baseDelayMs: 20, maxDelayMs: 200 },
    maxEventLength,
    logger: recordingLogger(log),
  });
  onTestFinished(() => gateway.stop().catch(() => {}));
  return { gateway, source };
}

describe('§4 garbage on a healthy stream: logged, skipped, nothing runs, the stream stays', () => {
  it('skips lines without a field, invalid JSON in data:, unknown and unnamed events', async () => {
    let sentAll = false;
    const server = await startHostileServer((_, res) => {
      res.write(hello());
      res.write('this line has no colon and means nothing\n');
      res.write('\u0000\u00ff binary junk: \u0007\n\n');
      res.write('event: command\nid: not-json\ndata: {"v":1,"id":\n\n');
      res.write('event: command\ndata: []\n\n');
      res.write('data: an event without a name\n\n');
      res.write('event: self-destruct\ndata: {"now":true}\n\n');
      res.write(': heartbeat\n\n');
      sentAll = true;
    });
    const log: LogEntry[] = [];
    const { gateway, source } = gatewayFor(server.url, log);
    await gateway.start();
    await until(
      () => sentAll && log.filter((entry) => entry.message.includes('unknown event')).length === 2,
      'two unknown events logged',
    );
    await until(
      () => log.filter((entry) => entry.message === 'invalid command skipped').length === 2,
      'two invalid commands logged',
    );

    expect(codesLogged(log)).toContain('invalid-message');
    for (const entry of log.filter((e) => e.message === 'invalid command skipped'))
      expect(String(entry.fields?.error)).toMatch(/^invalid-message: /);
    expect(source.queries).toEqual([]);
    expect(server.requests).toEqual([]); // not even an ack: nothing had an ID worth acking
    expect(gateway.connected).toBe(true);
    expect(server.connections).toBe(1);
  });
});

describe('§4.1 a broken hello: the connection is dropped and retried with backoff; nothing after it runs', () => {
  it('invalid JSON in the hello, with a command right behind it in the same write', async () => {
    const server = await startHostileServer((connection, res) => {
      if (connection <= 2)
        res.write(`event: hello\ndata: {"v":1,"codecs":\n\n${command(`after-bad-hello-${connection}`)}`);
      else res.write(hello());
    });
    const log: LogEntry[] = [];
    const { gateway, source } = gatewayFor(server.url, log);
    await gateway.start();
    expect(server.connections).toBe(3);
    await until(() => server.closedByGateway === 2, 'the two bad connections closed by the gateway');
    expect(log.filter((entry) => entry.message === 'invalid hello on the command stream')).toHaveLength(2);
    expect(codesLogged(log)).toContain('invalid-message');
    expect(log.filter((entry) => entry.message === 'command stream lost, reconnecting')).toHaveLength(2);
    expect(source.queries).toEqual([]);
    expect(server.requests).toEqual([]);
  });

  it('a command before any hello is a protocol violation: not run, not acked, the stream is retried', async () => {
    const server = await startHostileServer((connection, res) => {
      res.write(connection === 1 ? `${command('before-hello')}${hello()}` : hello());
    });
    const log: LogEntry[] = [];
    const { gateway, source } = gatewayFor(server.url, log);
    await gateway.start();
    expect(server.connections).toBe(2);
    expect(
      log.find((entry) => entry.message === 'protocol violation on the command stream')?.fields?.code,
    ).toBe('invalid-message');
    expect(source.queries).toEqual([]);
    expect(server.requests).toEqual([]);
  });

  it('a hello of another protocol version stops the gateway with a clear error instead of retrying', async () => {
    const server = await startHostileServer((_, res) => {
      res.write(`${hello({ v: 2 })}${command('from-the-future')}`);
    });
    const log: LogEntry[] = [];
    const { gateway, source } = gatewayFor(server.url, log);
    const refused = await gateway.start().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(BackhaulError.isInstance(refused)).toBe(true);
    expect((refused as BackhaulError).code).toBe('invalid-message');
    expect((refused as BackhaulError).message).toMatch(/protocol version 2; this gateway speaks version 1/);
    // start() rejects once the gateway has stopped: this count is final.
    expect(server.connections).toBe(1);
    expect(
      log.find((entry) => entry.message === 'the server speaks another protocol; not reconnecting'),
    ).toBeDefined();
    expect(source.queries).toEqual([]);
    expect(server.requests).toEqual([]);
    expect(gateway.connected).toBe(false);
  });
});

describe('§4 an event that never ends: the gateway caps one event and drops the connection', () => {
  it('drops a line without an end and an event without a blank line, then reconnects', async () => {
    const maxEventLength = 64 * 1024;
    const total = 64 * 1024 * 1024;
    const written: number[] = [];
    const server = await startHostileServer(async (connection, res) => {
      res.write(hello());
      if (connection === 1) {
        res.write('event: command\ndata: ');
        written.push(await flood(res, 'a'.repeat(16 * 1024), total)); // one line, never ended
      } else if (connection === 2) {
        res.write('event: command\n');
        written.push(await flood(res, `data: ${'b'.repeat(1000)}\n`, total)); // lines, never a blank one
      }
    });
    const log: LogEntry[] = [];
    const { gateway, source } = gatewayFor(server.url, log, maxEventLength);
    await gateway.start();
    await until(
      () => server.connections >= 3 && written.length === 2,
      'both floods dropped and a third connection',
      20_000,
    );

    expect(server.closedByGateway).toBe(2);
    // The gateway hung up long before the server ran out of bytes to send.
    for (const bytes of written) expect(bytes).toBeLessThan(total);
    const oversized = log.filter((entry) => entry.message === 'oversized event on the command stream');
    expect(oversized.map((entry) => entry.fields?.code)).toEqual(['payload-too-large', 'payload-too-large']);
    expect(source.queries).toEqual([]);
    expect(server.requests).toEqual([]);
    await until(() => gateway.connected, 'the gateway connected again');
  });
});
