import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulClient } from '@backhaul/client';
import { createDownloadSigner } from '@backhaul/core';
import { createGateway, type Gateway } from '@backhaul/gateway-node';
import { type BackhaulServer, createBackhaulServer } from '@backhaul/server-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createFsStorage } from '@backhaul/storage-fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { countingSource } from '../support/counting-source.js';
import { until } from '../support/until.js';

/**
 * A gateway that stops reading its command stream while commands keep coming. The
 * server must not queue them without bound for that socket: past `streamBufferBytes` it cuts
 * the stream and frees the buffer, and the commands stay in the store, sent again when a reader
 * (re)connects (§4). Measured on the server's own sockets (an http.Server of the test's, with the
 * server's handler): the most any of them ever held queued, in bytes.
 */

const CAP = 256 * 1024;
const COMMANDS = 100;
/** Each command event carries ~100 KB of SQL: 10 MB in all, 40 times the cap. */
const SQL = `SELECT 1 AS one -- ${'x'.repeat(100_000)}`;
const gatewayId = 'gw-slow';
const gatewayToken = 'gateway-token-of-the-slow-reader';
const downloadSecret = 'download-secret-of-the-slow-test';
const callerToken = 'caller-token-of-the-slow-test';
/** Rows in the gateway's table: a rows-mode result of a few MB, in batches of 1000. */
const ORDERS = 30_000;

let dir: string;
let server: BackhaulServer;
let http: Server;
let port: number;
/** Every response the server is writing: their queued bytes include the socket's. */
const responses = new Set<ServerResponse>();
/** Every response ever, open or closed. */
const everyResponse: ServerResponse[] = [];
let gateway: Gateway | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'backhaul-slow-'));
  server = createBackhaulServer({
    storage: createFsStorage({ root: join(dir, 'storage') }),
    gateways: [{ id: gatewayId, token: gatewayToken }],
    callerTokens: [callerToken],
    downloadSecret,
    streamBufferBytes: CAP,
    sweepIntervalMs: 50,
  });
  http = createServer(server.handler);
  http.on('request', (_req, res: ServerResponse) => {
    responses.add(res);
    everyResponse.push(res);
    res.on('close', () => responses.delete(res));
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  port = (http.address() as { port: number }).port;
});
afterAll(async () => {
  await gateway?.stop();
  await server?.close();
  http?.closeAllConnections();
  await new Promise((resolve) => http?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** The most bytes any response (with its socket) has queued for its client right now. */
const queuedOnServer = () => Math.max(0, ...[...responses].map((res) => res.writableLength));

it('a gateway that stops reading its stream is cut once the server has queued streamBufferBytes for it; the commands wait in the store and all run once when a reader connects', async () => {
  // A gateway's stream opened by hand, then never read again.
  const stalled = connect({ host: '127.0.0.1', port });
  await once(stalled, 'connect');
  stalled.write(
    `GET /v1/gateway/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${gatewayToken}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  stalled.pause();
  await until(() => server.listGateways()[0]?.connected, 'the stream to open');

  let mostQueued = 0;
  const ids: string[] = [];
  for (let i = 0; i < COMMANDS; i++) {
    ids.push((await server.submitQuery({ gatewayId, sql: SQL, mode: 'rows' })).id);
    mostQueued = Math.max(mostQueued, queuedOnServer());
  }
  // It filled past the cap (the kernel's buffers took their share first), and was cut there:
  // never more than the cap plus the one event that crossed it.
  expect(mostQueued).toBeGreaterThan(CAP);
  expect(mostQueued).toBeLessThanOrEqual(CAP + SQL.length + 1024);
  expect(server.listGateways()[0]?.connected).toBe(false);
  await until(() => queuedOnServer() === 0, 'the cut stream to free its buffer');

  // Nothing was lost: every command is waiting, sent or not.
  const states = await Promise.all(ids.map(async (id) => (await server.getQuery(id)).state));
  expect(new Set(states)).toEqual(new Set(states.filter((s) => s === 'pending' || s === 'dispatched')));

  // A gateway that reads: every command arrives (the backlog at its pace), each runs once.
  const dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), ORDERS).path;
  const source = countingSource(createSqliteDataSource({ filename: dbPath }));
  gateway = createGateway({
    serverUrl: `http://127.0.0.1:${port}`,
    token: gatewayToken,
    dataSource: source,
    reconnect: { baseDelayMs: 20, maxDelayMs: 100 },
  });
  await gateway.start();
  await until(
    async () => {
      const views = await Promise.all(ids.map((id) => server.getQuery(id)));
      return views.every((view) => view.state === 'completed');
    },
    'every command to complete',
    60_000,
  );
  expect(source.queries).toHaveLength(COMMANDS);
  // The reading gateway was never cut: its backlog was sent no faster than it read.
  expect(queuedOnServer()).toBeLessThanOrEqual(CAP);
  stalled.destroy();
});

it('a caller that stops reading a download holds the server to a bounded buffer; the file arrives whole once it reads', async () => {
  // 32 MiB in storage, behind a signed link as the server hands it out (§3.5).
  const key = 'results/gw-slow/big.parquet';
  const file = Buffer.alloc(32 * 1024 * 1024);
  for (let i = 0; i < file.length; i += 4096) file.writeUInt32LE(i, i);
  const upload = await createFsStorage({ root: join(dir, 'storage') }).beginUpload(key, {});
  await upload.writePart(file);
  await upload.complete();
  const query = createDownloadSigner(downloadSecret).sign(key, Date.now() + 60_000);

  const reader = connect({ host: '127.0.0.1', port });
  await once(reader, 'connect');
  reader.pause();
  reader.write(`GET /v1/downloads/${key}?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await until(() => responses.size > 0 && queuedOnServer() > 0, 'the download to start');
  // However long it is left unread, the server's queue for it stays at the stream's buffer.
  let mostQueued = 0;
  for (let sample = 0; sample < 40; sample++) {
    mostQueued = Math.max(mostQueued, queuedOnServer());
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(mostQueued).toBeLessThanOrEqual(1024 * 1024);

  // Reading again, the caller gets every byte: the download was held back, not dropped.
  const received: Buffer[] = [];
  reader.on('data', (piece: Buffer) => received.push(piece));
  reader.resume();
  const body = await until(() => {
    const all = Buffer.concat(received);
    const headerEnd = all.indexOf('\r\n\r\n');
    return headerEnd >= 0 && all.length - headerEnd - 4 >= file.length
      ? all.subarray(headerEnd + 4)
      : undefined;
  }, 'the whole download');
  expect(Buffer.compare(body, file)).toBe(0);
  reader.destroy();
});

it("a caller that stops reading a query's event stream holds the server to a bounded buffer; a reader is replayed every row", async () => {
  // Runs on the reading gateway of the first test.
  expect(gateway).toBeDefined();
  // Submitted as the caller that then reads it: a query is visible to its own caller only.
  const client = createBackhaulClient({ url: `http://127.0.0.1:${port}`, token: callerToken });
  const { id } = await client.submit({ gatewayId, sql: 'SELECT * FROM orders ORDER BY id', mode: 'rows' });
  await until(async () => (await server.getQuery(id)).state === 'completed', 'the rows to be in');

  // The stream opens, replays the state and every kept batch at once, and nobody reads it.
  const reader = connect({ host: '127.0.0.1', port });
  await once(reader, 'connect');
  reader.pause();
  reader.write(
    `GET /v1/queries/${id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${callerToken}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  const response = await until(
    () => everyResponse.find((res) => res.req.url?.endsWith(`/${id}/events`)),
    'the stream',
  );
  // Several MB of batches: the replay waits for the reader, so what is queued for it stays
  // within the cap however long it does not read (no batch is written into a full socket).
  await until(() => response.writableLength > 0, 'the replay to start');
  let mostQueued = 0;
  for (let sample = 0; sample < 40; sample++) {
    mostQueued = Math.max(mostQueued, response.writableLength);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(mostQueued).toBeLessThanOrEqual(CAP);
  reader.destroy();

  // A caller that reads is replayed all of it, never cut for reading slower than it is written.
  const rows: unknown[] = [];
  for await (const event of client.follow(id)) {
    if (event.type === 'rows') rows.push(...event.rows);
  }
  expect(rows).toHaveLength(ORDERS);
});
