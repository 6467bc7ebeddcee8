import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BackhaulError, type DataSource, failedProbes, notReady, toProblem } from '@backhaul/core';
import type { Registry } from 'prom-client';

/** The optional status port of a gateway (docs/operations.md): health, readiness and metrics. */
export interface GatewayStatusOptions {
  /** TCP port; 0 picks a free one (read it from `gateway.statusUrl`). */
  port: number;
  /** Default 127.0.0.1: a gateway opens no port to the world unless told to. */
  host?: string;
  /** How long each `/readyz` probe may take; default 2000. */
  probeTimeoutMs?: number;
  /** What `/readyz` runs on the database; default `SELECT 1`. */
  probeSql?: string;
}

export interface StatusServerParts {
  registry: Registry;
  dataSource: DataSource;
  connected(): boolean;
}

export interface StatusServer {
  url: string;
  close(): Promise<void>;
}

/**
 * `GET /healthz` (200 while the event loop turns), `GET /readyz` (200 when the command stream is
 * open and the database answers, else 503 problem+json naming what failed) and `GET /metrics`.
 * Nothing here needs a token and nothing here is secret: no SQL, no server URL, no errors.
 */
export async function listenStatus(
  options: GatewayStatusOptions,
  parts: StatusServerParts,
): Promise<StatusServer> {
  const host = options.host ?? '127.0.0.1';
  const probeTimeoutMs = options.probeTimeoutMs ?? 2000;
  const probeSql = options.probeSql ?? 'SELECT 1';

  const probeDatabase = async () => {
    const cursor = await parts.dataSource.query({
      sql: probeSql,
      params: [],
      maxRows: 1,
      timeoutMs: probeTimeoutMs,
    });
    try {
      for await (const _batch of cursor.batches(1)) break;
    } finally {
      await cursor.close();
    }
  };

  const answer = async (path: string, res: ServerResponse) => {
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const failed = await failedProbes(
        {
          server: async () => {
            if (!parts.connected()) throw new Error('not connected');
          },
          database: probeDatabase,
        },
        probeTimeoutMs,
      );
      if (failed.length > 0) return sendProblem(res, notReady(failed));
      return sendJson(res, 200, { status: 'ready', checks: ['server', 'database'] });
    }
    if (path === '/metrics') {
      const body = await parts.registry.metrics();
      res.writeHead(200, { 'content-type': parts.registry.contentType, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    sendProblem(
      res,
      new BackhaulError('not-found', 'The status port answers /healthz, /readyz and /metrics'),
    );
  };

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://status.invalid').pathname;
    if (req.method !== 'GET') {
      res.setHeader('allow', 'GET');
      sendProblem(res, new BackhaulError('method-not-allowed', `${req.method} is not allowed here`));
      return;
    }
    answer(path, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function sendProblem(res: ServerResponse, problem: BackhaulError): void {
  res.writeHead(problem.status, {
    'content-type': 'application/problem+json',
    'cache-control': 'no-store',
    ...(problem.retryAfterMs === undefined
      ? {}
      : { 'retry-after': String(Math.ceil(problem.retryAfterMs / 1000)) }),
  });
  res.end(JSON.stringify(toProblem(problem)));
}
