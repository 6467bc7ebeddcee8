import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulClient } from '@backhaul/client';
import { createGateway } from '@backhaul/gateway-node';
import { type BackhaulServer, createBackhaulServer } from '@backhaul/server-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createFsStorage } from '@backhaul/storage-fs';
import { type HttpBindings, serve } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import Database from 'better-sqlite3';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

/*
 * The recipes of the server-node README, with real installs of each framework: a gateway dials
 * the mounted handler, a caller runs a query in rows mode and one in file mode (chunk uploads and
 * the signed download pass through the framework too), and a typo in a query is a 400.
 */

const gatewayToken = 'framework-gateway-token';
const callerToken = 'framework-caller-token';
const gatewayId = 'gw-framework';

let dir: string;
let dbPath: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'backhaul-frameworks-'));
  dbPath = join(dir, 'numbers.sqlite');
  const db = new Database(dbPath);
  db.exec('CREATE TABLE numbers (n INTEGER NOT NULL, label TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO numbers VALUES (?, ?)');
  for (let n = 1; n <= 500; n++) insert.run(n, `row ${n}`);
  db.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A Backhaul server (not listening: the framework owns the port) with its storage in a temp dir. */
function newBackhaul(basePath?: string): BackhaulServer {
  const root = mkdtempSync(join(dir, 'storage-'));
  const backhaul = createBackhaulServer({
    storage: createFsStorage({ root }),
    gateways: [{ id: gatewayId, token: gatewayToken }],
    callerTokens: [callerToken],
    ...(basePath ? { basePath } : {}),
  });
  cleanups.push(() => backhaul.close());
  return backhaul;
}

async function closing(server: Server): Promise<string> {
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  if (!server.listening) await new Promise<void>((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Runs the same checks through whatever serves `base`. */
async function runQueriesThrough(base: string) {
  const gateway = createGateway({
    serverUrl: base,
    token: gatewayToken,
    dataSource: createSqliteDataSource({ filename: dbPath }),
  });
  await gateway.start();
  cleanups.push(() => gateway.stop());
  const client = createBackhaulClient({ url: base, token: callerToken });

  const sql = 'SELECT n, label FROM numbers ORDER BY n';
  const rowsQuery = await client.submit({ gatewayId, sql, mode: 'rows' });
  expect((await client.waitFor(rowsQuery.id)).state).toBe('completed');
  const { rows } = await client.rows(rowsQuery.id);
  expect(rows.length).toBe(500);
  expect(rows[499]).toEqual([500, 'row 500']);

  const fileQuery = await client.submit({ gatewayId, sql, mode: 'file' });
  const done = await client.waitFor(fileQuery.id);
  expect(done.state).toBe('completed');
  if (done.result?.kind !== 'file') throw new Error(`expected a file, got ${JSON.stringify(done.result)}`);
  expect(done.result.url.startsWith(`${base}/v1/downloads/`)).toBe(true);
  const download = await fetch(done.result.url);
  expect(download.status).toBe(200);
  const bytes = await download.arrayBuffer();
  expect(bytes.byteLength).toBe(done.result.size);
  const fileRows = await parquetReadObjects({ file: bytes, compressors });
  expect(fileRows.length).toBe(500);
  expect(fileRows[0]).toEqual({ n: 1n, label: 'row 1' }); // SQLite integers are int64

  const typo = await fetch(`${base}/v1/queries`, {
    method: 'POST',
    headers: { authorization: `Bearer ${callerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ gatewayId, sql, timeoutMS: 5000 }),
  });
  expect(typo.status).toBe(400);
  expect(typo.headers.get('content-type')).toBe('application/problem+json');
  const problem = (await typo.json()) as { code: string; detail: string };
  expect(problem.code).toBe('invalid-message');
  expect(problem.detail).toContain('timeoutMS');
}

describe('the handler mounted in real frameworks runs queries end to end', () => {
  it('Express 5: app.use("/backhaul", handler), even behind a global express.json()', async () => {
    const backhaul = newBackhaul();
    const app = express();
    // Many apps parse JSON globally; the handler takes the parsed body instead of hanging on the stream.
    app.use(express.json());
    app.use('/backhaul', backhaul.handler);
    app.get('/health', (_req, res) => {
      res.send('ok');
    });
    const origin = await closing(app.listen(0, '127.0.0.1'));
    await runQueriesThrough(`${origin}/backhaul`);
    // Unknown paths under the mount fall through to the app (here: Express's own 404).
    expect((await fetch(`${origin}/backhaul/not-ours`)).status).toBe(404);
    expect(await (await fetch(`${origin}/health`)).text()).toBe('ok');
  });

  it('Fastify 5: a scope whose bodies stay unread, the reply hijacked', async () => {
    const backhaul = newBackhaul('/backhaul');
    const fastify = Fastify();
    await fastify.register(async (scope) => {
      // Fastify's own JSON parser would read POST bodies before the handler sees them.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
      scope.all('/backhaul/*', (request, reply) => {
        reply.hijack();
        backhaul.handler(request.raw, reply.raw);
      });
    });
    // The rest of the app keeps its JSON parser.
    fastify.post('/echo', async (request) => request.body);
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => fastify.close());
    const origin = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
    await runQueriesThrough(`${origin}/backhaul`);
    const echo = await fetch(`${origin}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(await echo.json()).toEqual({ a: 1 });
  });

  it('Fastify with its JSON parser left in front: a clear 500 problem, not a hang', async () => {
    const backhaul = newBackhaul('/backhaul');
    const fastify = Fastify();
    fastify.all('/backhaul/*', (request, reply) => {
      reply.hijack();
      backhaul.handler(request.raw, reply.raw);
    });
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => fastify.close());
    const origin = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
    const response = await fetch(`${origin}/backhaul/v1/queries`, {
      method: 'POST',
      headers: { authorization: `Bearer ${callerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ gatewayId, sql: 'SELECT 1' }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await response.json()) as { code: string; detail: string; retryable: boolean };
    expect(problem.code).toBe('internal');
    expect(problem.retryable).toBe(false);
    expect(problem.detail).toContain('was read before the Backhaul handler got it');
  });

  it('Hono on @hono/node-server: the Node request and response passed through', async () => {
    const backhaul = newBackhaul('/backhaul');
    const app = new Hono<{ Bindings: HttpBindings }>();
    app.all('/backhaul/*', (c) => {
      backhaul.handler(c.env.incoming, c.env.outgoing);
      return RESPONSE_ALREADY_SENT;
    });
    app.get('/health', (c) => c.text('ok'));
    const origin = await closing(serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server);
    await runQueriesThrough(`${origin}/backhaul`);
    expect(await (await fetch(`${origin}/health`)).text()).toBe('ok');
  });
});
