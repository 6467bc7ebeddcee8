import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulClient } from '@backhaul/client';
import type { QueryView } from '@backhaul/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { type ReadyProcess, startReadyProcess } from '../support/ready-process.js';
import { freePort } from '../support/server-processes.js';

/**
 * The reference server and gateway (examples/src) as the processes an operator runs: their stderr
 * is pino's JSON, one object a line, and every line about a query names its command, its gateway
 * and the trace the caller sent (docs/operations.md, "Tracing and logs").
 */

const gateway = { id: 'gw-logs', token: 'gateway-token-for-the-log-test' };
const callerToken = 'caller-token-for-the-log-test';
const callerTraceId = '0af7651916cd43dd8448eb211c80319c';
const traceparent = `00-${callerTraceId}-b7ad6b7169203331-01`;

type Line = Record<string, unknown>;

describe('the reference processes log JSON lines that name the command, gateway and trace', () => {
  let dir: string;
  let server: ReadyProcess<{ ready: string; url: string }>;
  let gatewayProcess: ReadyProcess<{ ready: string }>;
  const submitted: QueryView[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-json-logs-'));
    const { path } = ensureDemoDatabase(join(dir, 'orders.sqlite'), 3_000);
    const port = await freePort();
    // Node's own warnings are not the processes' logs: only what they log is looked at.
    const quiet = { NODE_NO_WARNINGS: '1', BACKHAUL_LOG_LEVEL: 'info' };
    server = await startReadyProcess({
      script: new URL('../../examples/src/server.ts', import.meta.url),
      env: {
        ...quiet,
        BACKHAUL_HOST: '127.0.0.1',
        BACKHAUL_PORT: String(port),
        BACKHAUL_PUBLIC_URL: undefined,
        BACKHAUL_STORE: 'memory',
        BACKHAUL_STORAGE: 'fs',
        BACKHAUL_STORAGE_ROOT: join(dir, 'storage'),
        BACKHAUL_GATEWAYS: `${gateway.id}:${gateway.token}`,
        BACKHAUL_CALLER_TOKENS: callerToken,
        BACKHAUL_ADMIN_TOKEN: undefined,
        BACKHAUL_DOWNLOAD_SECRET: 'download-secret-of-the-log-test',
        BACKHAUL_CODECS: 'zstd',
      },
      readyTimeoutMs: 30_000,
    });
    gatewayProcess = await startReadyProcess({
      script: new URL('../../examples/src/gateway.ts', import.meta.url),
      env: {
        ...quiet,
        BACKHAUL_SERVER_URL: server.ready.url,
        BACKHAUL_GATEWAY_TOKEN: gateway.token,
        BACKHAUL_SOURCE: 'sqlite',
        BACKHAUL_SQLITE_PATH: path,
        BACKHAUL_CODEC: 'zstd',
        BACKHAUL_STATUS_PORT: undefined,
      },
      readyTimeoutMs: 30_000,
    });

    const client = createBackhaulClient({ url: server.ready.url, token: callerToken });
    for (const mode of ['rows', 'file'] as const) {
      const response = await fetch(`${server.ready.url}/v1/queries`, {
        method: 'POST',
        headers: { authorization: `Bearer ${callerToken}`, 'content-type': 'application/json', traceparent },
        body: JSON.stringify({ gatewayId: gateway.id, sql: 'SELECT * FROM orders ORDER BY id', mode }),
      });
      expect(response.status).toBe(202);
      const view = (await response.json()) as QueryView;
      expect((await client.waitFor(view.id)).state).toBe('completed');
      submitted.push(view);
    }
    // A clean stop: every line is written (pino writes synchronously) before the test reads them.
    await gatewayProcess.stop();
    await server.stop();
  }, 120_000);

  afterAll(async () => {
    await gatewayProcess?.kill();
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const linesOf = (process: ReadyProcess<unknown>): Line[] =>
    process
      .stderr()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        // Every line is one JSON object: a parse error here fails the test, naming the line.
        const parsed = JSON.parse(line) as unknown;
        expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), line).toBe(true);
        return parsed as Line;
      });

  it('writes nothing but JSON objects on stderr, each with a level, time, service and message', () => {
    for (const [process, service] of [
      [server, 'server'],
      [gatewayProcess, 'gateway'],
    ] as const) {
      const lines = linesOf(process);
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) {
        expect(line).toMatchObject({ service, level: expect.any(Number), time: expect.any(Number) });
        expect(typeof line.msg).toBe('string');
      }
    }
  });

  it('names the command, its gateway and the caller’s trace on every line about a query, on both sides', () => {
    for (const view of submitted) {
      const server_ = linesOf(server).filter((line) => line.commandId === view.id);
      const gateway_ = linesOf(gatewayProcess).filter((line) => line.commandId === view.id);
      expect(server_.map((line) => line.msg)).toEqual(
        expect.arrayContaining([
          'query accepted',
          'command sent to the gateway',
          'command acknowledged',
          'command completed',
        ]),
      );
      expect(gateway_.map((line) => line.msg)).toEqual(
        expect.arrayContaining(['command received', 'command completed']),
      );
      for (const line of [...server_, ...gateway_]) {
        expect(line, String(line.msg)).toMatchObject({ gatewayId: gateway.id, traceId: callerTraceId });
      }
    }
    // No line names a command without naming its trace: none about these queries is missed above.
    const mentions = [...linesOf(server), ...linesOf(gatewayProcess)].filter((line) =>
      submitted.some((view) => JSON.stringify(line).includes(view.id)),
    );
    for (const line of mentions) expect(line, String(line.msg)).toMatchObject({ traceId: callerTraceId });
  });
});
