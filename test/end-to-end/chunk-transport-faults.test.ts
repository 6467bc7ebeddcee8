import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChecksummer } from '@backhaul/core';
import { encodeCursorAsParquet } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { gatewayId, type Harness, startHarness } from '../support/harness.js';
import { startTcpFaultProxy, type TcpFaultProxy } from '../support/tcp-fault-proxy.js';
import { until } from '../support/until.js';

/**
 * Chunks that arrive cut short on the wire or out of order. Duplicated and bit-flipped
 * chunks are in delivery-and-faults.test.ts. Either way the stored file is exact, or the
 * transfer fails loudly: never a wrong file behind a URL.
 */

const SQL = 'SELECT * FROM orders ORDER BY id';

describe('chunks cut short on the wire or reordered still give the exact file', () => {
  let dir: string;
  let dbPath: string;
  let harness: Harness;
  let expected: Buffer;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-chunk-faults-'));
    dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), 200_000).path;
    harness = await startHarness({ sqlitePath: dbPath });
    const source = createSqliteDataSource({ filename: dbPath });
    const pieces: Uint8Array[] = [];
    for await (const piece of encodeCursorAsParquet(
      await source.query({ sql: SQL, params: [], columnar: true }),
    ))
      pieces.push(piece);
    await source.close();
    expected = Buffer.concat(pieces);
    expect(expected.length).toBeGreaterThan(4 * 524_288);
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  afterAll(async () => {
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the file query through `serverUrl` and checks the downloaded bytes. */
  const transferExactly = async (serverUrl: string) => {
    const gateway = await harness.startGateway({ serverUrl });
    closers.push(() => gateway.stop());
    const { id } = await harness.client.submit({ gatewayId, sql: SQL, mode: 'file' });
    const final = await harness.client.waitFor(id);
    expect(final.state, JSON.stringify(final)).toBe('completed');
    if (final.result?.kind !== 'file') throw new Error('expected a file');
    const downloaded = Buffer.from(await (await fetch(final.result.url)).arrayBuffer());
    expect(Buffer.compare(expected, downloaded)).toBe(0);
    expect((await createChecksummer()).digest(downloaded)).toBe(final.result.checksum);
  };

  it('chunk requests cut mid-body (FIN) or reset (RST) on the TCP path are refused whole and sent again', async () => {
    const proxy: TcpFaultProxy = await startTcpFaultProxy(harness.url);
    closers.push(() => proxy.close());
    const marker = 'PUT /v1/gateway/commands/';
    // A few hundred bytes of headers, then 4 KB into the body: the server has a truncated chunk.
    proxy.addRule({ marker, fault: { kind: 'cut', afterBytes: 4096 }, times: 3 });
    proxy.addRule({ marker, fault: { kind: 'reset', afterBytes: 4096 }, times: 2 });
    await transferExactly(proxy.url);
    expect(proxy.fired).toBe(5);
  });

  it('chunks that reach the server out of order (0 held back until 3 is stored) are assembled in order', async () => {
    let proxy: FaultProxy | undefined;
    const stored = (index: number) =>
      proxy?.log.some((e) => e.method === 'PUT' && e.path.endsWith(`/chunks/${index}`) && e.status === 201);
    proxy = await startFaultProxy(harness.url, async (method, path) => {
      if (method === 'PUT' && path.endsWith('/chunks/0'))
        await until(() => stored(3), 'chunk 3 to be stored');
      return undefined;
    });
    closers.push(() => proxy.close());
    await transferExactly(proxy.url);
    const order = proxy.log
      .filter((e) => e.method === 'PUT' && e.status === 201)
      .map((e) => Number(e.path.slice(e.path.lastIndexOf('/') + 1)));
    expect(order.indexOf(3)).toBeLessThan(order.indexOf(0));
    expect([...order].sort((a, b) => a - b)).toEqual(order.map((_, i) => i));
  });
});
