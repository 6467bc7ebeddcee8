import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackhaulError } from '@backhaul/core';
import type { GatewayEvent } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { countingSource } from '../support/counting-source.js';
import { gatewayId, type Harness, startHarness } from '../support/harness.js';
import { startTcpFaultProxy, type TcpFaultProxy } from '../support/tcp-fault-proxy.js';
import { until } from '../support/until.js';

/**
 * A command stream that stalls without closing: the TCP path stops carrying bytes but
 * neither side sees a FIN or a RST, so the server keeps writing into it and believes the gateway
 * connected. Only the heartbeat can tell (§4): the gateway, hearing nothing for
 * `heartbeatTimeoutMs`, drops the stream and reconnects, and the commands written into the stall
 * are sent again on the new stream because they were never acked. Heartbeat and silence timeout
 * are scaled down through options (100 ms and 1.5 s instead of 15 s and 45 s).
 */

let dir: string;
let dbPath: string;
let harness: Harness;
let proxy: TcpFaultProxy;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'backhaul-stall-'));
  dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), 1000).path;
  harness = await startHarness({ sqlitePath: dbPath, server: { heartbeatMs: 100 } });
  proxy = await startTcpFaultProxy(harness.url);
});
afterAll(async () => {
  await harness?.close();
  await proxy?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('a stream that stalls without closing is noticed by the missing heartbeat; the gateway reconnects and the commands issued meanwhile run once', async () => {
  const source = countingSource(createSqliteDataSource({ filename: dbPath }));
  const gateway = await harness.startGateway({
    serverUrl: proxy.url,
    dataSource: source,
    heartbeatTimeoutMs: 1500,
    reconnect: { baseDelayMs: 20, maxDelayMs: 100 },
  });
  const events: GatewayEvent[] = [];
  gateway.on((event) => events.push(event));
  const streams = () => proxy.connections.filter((c) => c.head.startsWith('GET /v1/gateway/commands '));
  expect(streams()).toHaveLength(1);

  // The path goes silent both ways; the server still holds the stream as the gateway's.
  streams()[0]?.stall();
  const issued = await Promise.all(
    [1, 2, 3].map((n) =>
      harness.client.submit({ gatewayId, sql: `SELECT count(*) + ${n} AS n FROM orders`, mode: 'rows' }),
    ),
  );
  // The commands were written into the stall: the server sent them, nobody got them.
  for (const { id } of issued) expect((await harness.client.get(id)).state).toBe('dispatched');
  await until(
    () => (streams()[0]?.bytes.downstream ?? 0) > 0 && streams()[0]?.state === 'stalled',
    'bytes into the stall',
  );

  // The gateway hears no heartbeat, calls the stream dead and opens a new one.
  await until(
    () => events.some((event) => event.type === 'disconnected'),
    'the gateway to give up on the stream',
  );
  const disconnected = events.find((event) => event.type === 'disconnected');
  const cause = disconnected?.type === 'disconnected' ? disconnected.error : undefined;
  expect(BackhaulError.isInstance(cause) && cause.code).toBe('timeout');

  for (const [index, { id }] of issued.entries()) {
    const final = await harness.client.waitFor(id);
    expect(final.state).toBe('completed');
    expect((await harness.client.rows(id)).rows).toEqual([[1000 + index + 1]]);
  }
  // Each ran once, on the new stream; the stalled one is still open, just silent.
  expect(source.queries.filter((sql) => sql.includes('count(*) +'))).toHaveLength(3);
  expect(streams().length).toBeGreaterThanOrEqual(2);
  expect(streams()[0]?.state).toBe('stalled');
  await gateway.stop();
  await source.close();
});
