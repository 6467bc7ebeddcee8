import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChecksummer } from '@backhaul/core';
import { encodeCursorAsParquet, type GatewayEvent } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { countingSource } from '../support/counting-source.js';
import { type FaultProxy, type RequestFault, startFaultProxy } from '../support/fault-proxy.js';
import { gatewayId, type Harness, startHarness } from '../support/harness.js';
import { until } from '../support/until.js';

// Enough orders for a file of several chunks with zstd pages (about 16 bytes a row).
const ORDERS = 200_000;

describe('delivery survives a broken stream and faulty chunks', () => {
  let dir: string;
  let dbPath: string;
  let harness: Harness;
  let proxy: FaultProxy | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-faults-'));
    dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), ORDERS).path;
    harness = await startHarness({ sqlitePath: dbPath });
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });
  afterAll(async () => {
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a command issued while the gateway is disconnected is delivered when it reconnects with Last-Event-ID, and runs once (§4)', async () => {
    proxy = await startFaultProxy(harness.url);
    const source = countingSource(createSqliteDataSource({ filename: dbPath }));
    const gateway = await harness.startGateway({
      serverUrl: proxy.url,
      dataSource: source,
      reconnect: { baseDelayMs: 20, maxDelayMs: 100 },
    });
    const events: GatewayEvent[] = [];
    gateway.on((event) => events.push(event));

    // A first command, so the gateway has a Last-Event-ID to resume from.
    const first = await harness.client.submit({
      gatewayId,
      sql: 'SELECT count(*) AS n FROM orders',
      mode: 'rows',
    });
    expect((await harness.client.waitFor(first.id)).state).toBe('completed');

    proxy.cutAll({ refuse: true });
    await until(() => !gateway.connected, 'the gateway to notice the cut');
    const second = await harness.client.submit({
      gatewayId,
      sql: 'SELECT max(id) AS top FROM orders',
      mode: 'rows',
    });
    expect((await harness.client.get(second.id)).state).toBe('pending');

    proxy.accept();
    const final = await harness.client.waitFor(second.id);
    expect(final.state).toBe('completed');
    expect((await harness.client.rows(second.id)).rows).toEqual([[ORDERS]]);

    const reconnects = proxy.log.filter(
      (entry) => entry.method === 'GET' && entry.path === '/v1/gateway/commands',
    );
    expect(reconnects.length).toBeGreaterThanOrEqual(2);
    expect(reconnects.at(-1)?.headers['last-event-id']).toBe(first.id);
    expect(source.queries.filter((q) => q.includes('max(id)'))).toHaveLength(1);
    expect(
      events.filter((e) => e.type === 'command' && e.command.id === second.id && !e.duplicate),
    ).toHaveLength(1);
    await gateway.stop();
  });

  it('a duplicate chunk is accepted idempotently; a corrupt chunk is rejected, retried, and the file is still exact (§6.2)', async () => {
    const faults = new Map<string, RequestFault>([
      ['/chunks/2', 'corrupt'],
      ['/chunks/3', 'duplicate'],
    ]);
    proxy = await startFaultProxy(harness.url, (method, path) => {
      if (method !== 'PUT') return undefined;
      const key = path.slice(path.lastIndexOf('/chunks/'));
      const fault = faults.get(key);
      faults.delete(key); // each fault once: the retry goes through clean
      return fault;
    });
    const gateway = await harness.startGateway({ serverUrl: proxy.url });
    const sql = 'SELECT * FROM orders';
    const submitted = await harness.client.submit({ gatewayId, sql, mode: 'file' });
    const final = await harness.client.waitFor(submitted.id);
    expect(final.state).toBe('completed');
    if (final.result?.kind !== 'file') throw new Error('expected a file');

    const chunkStatuses = (suffix: string) =>
      proxy!.log.filter((e) => e.method === 'PUT' && e.path.endsWith(suffix)).map((e) => e.status);
    expect(chunkStatuses('/chunks/2')).toEqual([422, 201]);
    expect(chunkStatuses('/chunks/3')).toEqual([201, 200]);

    const downloaded = Buffer.from(await (await fetch(final.result.url)).arrayBuffer());
    const source = createSqliteDataSource({ filename: dbPath });
    const pieces: Uint8Array[] = [];
    for await (const piece of encodeCursorAsParquet(await source.query({ sql, params: [], columnar: true })))
      pieces.push(piece);
    await source.close();
    expect(downloaded.length).toBeGreaterThan(4 * 524_288);
    expect(Buffer.compare(Buffer.concat(pieces), downloaded)).toBe(0);
    expect((await createChecksummer()).digest(downloaded)).toBe(final.result.checksum);
    await gateway.stop();
  });
});
