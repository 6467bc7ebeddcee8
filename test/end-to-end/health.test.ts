import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource, ObjectStorage } from '@backhaul/core';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createFsStorage } from '@backhaul/storage-fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { gatewayId, type Harness, startHarness } from '../support/harness.js';
import { until } from '../support/until.js';

/** A storage whose `head` can be made to fail, or to hang past the probe timeout. */
function switchableStorage(inner: ObjectStorage) {
  const mode = { head: 'ok' as 'ok' | 'fail' | 'hang' };
  const storage: ObjectStorage = Object.create(inner);
  storage.head = (key) => {
    if (mode.head === 'fail')
      return Promise.reject(new Error('connect ECONNREFUSED 10.1.2.3:9000 secret-bucket'));
    if (mode.head === 'hang') return new Promise(() => undefined);
    return inner.head(key);
  };
  return { storage, mode };
}

/** A data source whose queries fail while `broken` is set (the database went away). */
function breakableSource(inner: DataSource) {
  const state = { broken: false };
  const source: DataSource = {
    specificationVersion: 'v1',
    name: inner.name,
    query: (request) =>
      state.broken ? Promise.reject(new Error('SQLITE_CANTOPEN /secret/path.db')) : inner.query(request),
    close: () => inner.close(),
  };
  return { source, state };
}

describe('health and readiness of the server and of the gateway status port', () => {
  let dir: string;
  let dbPath: string;
  let harness: Harness;
  let switchable: ReturnType<typeof switchableStorage>;
  let breakable: ReturnType<typeof breakableSource>;
  let statusUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-health-'));
    dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), 1000).path;
    switchable = switchableStorage(createFsStorage({ root: join(dir, 'storage') }));
    breakable = breakableSource(createSqliteDataSource({ filename: dbPath }));
    harness = await startHarness({
      sqlitePath: dbPath,
      storage: switchable.storage,
      server: { readinessTimeoutMs: 200 },
    });
    const gateway = await harness.startGateway({
      dataSource: breakable.source,
      status: { port: 0, probeTimeoutMs: 500 },
    });
    statusUrl = gateway.statusUrl ?? '';
  });

  afterAll(async () => {
    await harness?.close();
    await breakable?.source.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers /healthz and /readyz with 200 and no token while store and storage answer', async () => {
    const health = await fetch(`${harness.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${harness.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: ['store', 'storage'] });
  });

  it('answers /readyz 503 problem+json naming the storage when it fails or hangs, and says nothing of why', async () => {
    for (const mode of ['fail', 'hang'] as const) {
      switchable.mode.head = mode;
      const ready = await fetch(`${harness.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get('content-type')).toBe('application/problem+json');
      expect(ready.headers.get('retry-after')).toBe('5');
      const text = await ready.text();
      expect(JSON.parse(text)).toMatchObject({ code: 'service-unavailable', failed: ['storage'] });
      expect(text).not.toMatch(/ECONNREFUSED|10\.1\.2\.3|secret/);
      // The process itself is fine.
      expect((await fetch(`${harness.url}/healthz`)).status).toBe(200);
    }
    switchable.mode.head = 'ok';
    expect((await fetch(`${harness.url}/readyz`)).status).toBe(200);
  });

  it('serves /metrics without a token by default, in the Prometheus text format', async () => {
    const metrics = await fetch(`${harness.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await metrics.text()).toMatch(/^backhaul_server_gateways_connected 1$/m);
  });

  it('answers the gateway status port: healthz, readyz while connected and the database answers, 503 naming the database when it does not', async () => {
    expect((await fetch(`${statusUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${statusUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: ['server', 'database'] });

    breakable.state.broken = true;
    const notReady = await fetch(`${statusUrl}/readyz`);
    expect(notReady.status).toBe(503);
    expect(notReady.headers.get('content-type')).toBe('application/problem+json');
    const text = await notReady.text();
    expect(JSON.parse(text)).toMatchObject({ code: 'service-unavailable', failed: ['database'] });
    expect(text).not.toMatch(/SQLITE|secret/);
    breakable.state.broken = false;

    const metrics = await (await fetch(`${statusUrl}/metrics`)).text();
    expect(metrics).toMatch(/^backhaul_gateway_connected 1$/m);
    expect((await fetch(`${statusUrl}/nowhere`)).status).toBe(404);
    expect((await fetch(`${statusUrl}/readyz`, { method: 'POST' })).status).toBe(405);
  });

  it('keeps the series of two servers in one process apart', async () => {
    const other = await startHarness({ sqlitePath: dbPath });
    try {
      const query = await harness.client.submit({ gatewayId, sql: 'SELECT 1 AS one', mode: 'rows' });
      expect((await harness.client.waitFor(query.id)).state).toBe('completed');
      const completed = async (registry: typeof harness.server.metrics) =>
        (await registry.getSingleMetric('backhaul_server_commands_total')?.get())?.values.find(
          (sample) => sample.labels.state === 'completed',
        )?.value ?? 0;
      expect(await completed(harness.server.metrics)).toBeGreaterThanOrEqual(1);
      expect(await completed(other.server.metrics)).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('answers the gateway readyz 503 naming the server once the command stream is gone', async () => {
    await harness.server.close();
    await until(
      async () => (await fetch(`${statusUrl}/readyz`)).status === 503,
      'the gateway to notice the server is gone',
    );
    const problem = (await (await fetch(`${statusUrl}/readyz`)).json()) as { failed: string[] };
    expect(problem.failed).toEqual(['server']);
  });
});
