import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Agent, createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulServer, KEEP_ALIVE_TIMEOUT_MS } from '@backhaul/server-node';
import { createFsStorage } from '@backhaul/storage-fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  auth,
  callerToken,
  dispatchedCommand,
  gatewayA,
  gatewayB,
  openCommandStream,
  putChunk,
  randomBytesOf,
  submit,
  xxhash,
} from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newServer(extra: Record<string, unknown> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'backhaul-mount-'));
  const server = createBackhaulServer({
    storage: createFsStorage({ root }),
    gateways: [gatewayA, gatewayB],
    callerTokens: [callerToken],
    ...extra,
  });
  cleanups.push(async () => {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  });
  return { server, root };
}

async function listen(app: Server): Promise<string> {
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        app.closeAllConnections();
        app.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
}

describe('the handler mounts under a path, as Express app.use("/backhaul", handler) does', () => {
  it('routes on req.url, builds links and Location under req.baseUrl, and calls next() for unknown paths', async () => {
    const { server } = newServer();
    let fellThrough = 0;
    // What Express does for app.use('/backhaul', ...): strip the mount path, keep it in baseUrl.
    const app = createServer((req, res) => {
      if (!req.url?.startsWith('/backhaul/')) {
        res.writeHead(418).end();
        return;
      }
      const mounted = req as IncomingMessage & { baseUrl: string; originalUrl: string };
      mounted.originalUrl = req.url;
      mounted.baseUrl = '/backhaul';
      req.url = req.url.slice('/backhaul'.length);
      server.handler(req, res, () => {
        fellThrough++;
        res.writeHead(299).end();
      });
    });
    const base = `${await listen(app)}/backhaul`;
    const { response, view } = await submit(base, { gatewayId: 'gw-a', sql: 'select 1' });
    expect(response.status).toBe(202);
    expect(response.headers.get('location')).toBe(`/backhaul/v1/queries/${view.id}`);
    expect((await fetch(`${base}/not-ours`)).status).toBe(299);
    expect(fellThrough).toBe(1);

    const { id, stream } = await dispatchedCommand(base, 'file');
    await putChunk(base, gatewayA.token, id, 0, randomBytesOf(100, 1));
    const completed = await fetch(`${base}/v1/gateway/commands/${id}/complete`, {
      method: 'POST',
      headers: { ...auth(gatewayA.token), 'content-type': 'application/json' },
      body: JSON.stringify({
        kind: 'file',
        format: 'parquet',
        size: 100,
        checksum: await xxhash(randomBytesOf(100, 1)),
        rowCount: 1,
        chunkCount: 1,
      }),
    });
    const result = ((await completed.json()) as { result: { url: string } }).result;
    expect(result.url.startsWith(`${base}/v1/downloads/`)).toBe(true);
    expect((await fetch(result.url)).status).toBe(200);
    stream.close();
  });

  it('strips basePath itself where the framework does not (Fastify, Hono, bare node:http)', async () => {
    const { server } = newServer({ basePath: '/api/backhaul' });
    const base = `${await listen(createServer(server.handler))}/api/backhaul`;
    const { response, view } = await submit(base, { gatewayId: 'gw-a', sql: 'select 1' });
    expect(response.status).toBe(202);
    expect(response.headers.get('location')).toBe(`/api/backhaul/v1/queries/${view.id}`);
    const outside = await fetch(`${base.replace('/api/backhaul', '')}/v1/gateways`, {
      headers: auth(callerToken),
    });
    expect(outside.status).toBe(404);
  });
});

describe('close() ends streams and timers and aborts uploads in progress', () => {
  it('ends a command stream and leaves no partial upload behind', async () => {
    const { server, root } = newServer({ chunkSize: 1024 });
    const { url } = await server.listen();
    const { id, stream } = await dispatchedCommand(url, 'file');
    expect((await putChunk(url, gatewayA.token, id, 0, randomBytesOf(1024, 1))).status).toBe(201);
    const other = await openCommandStream(url, gatewayB.token);
    await other.nextOf('hello');
    await server.close();
    await expect(other.next(2000)).rejects.toThrow(/ended/);
    await expect(stream.next(2000)).rejects.toThrow(/ended/);
    const leftovers = readdirSync(join(root, '.uploads'));
    expect(leftovers).toEqual([]);
    await expect(fetch(`${url}/v1/gateways`)).rejects.toThrow();
  });
});

describe('listen() keeps idle connections for a minute, so a gateway starts its next file on warm connections', () => {
  it('answers with Keep-Alive: timeout=65 instead of Node’s 5', async () => {
    const { server } = newServer();
    const { url } = await server.listen();
    const agent = new Agent({ keepAlive: true });
    cleanups.push(async () => agent.destroy());
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      get(`${url}/v1/gateways`, { agent, headers: auth(callerToken) }, resolve).on('error', reject);
    });
    response.resume();
    expect(response.statusCode).toBe(200);
    expect(response.headers['keep-alive']).toBe(`timeout=${KEEP_ALIVE_TIMEOUT_MS / 1000}`);
  });
});
