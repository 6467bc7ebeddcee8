import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChecksummer } from '@backhaul/core';
import { encodeCursorAsParquet } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { callerToken, gatewayId, type Harness, startHarness } from '../support/harness.js';
import { until } from '../support/until.js';

const CHUNK = 524_288;
/** A gateway driven by hand over HTTP, to hold the only large slot for as long as the test wants. */
const holder = { id: 'gw-holder', token: 'gateway-holder-token-for-tests' };

describe('§3.7 admission control seen from a real gateway and a real caller', () => {
  let dir: string;
  let dbPath: string;
  let harness: Harness;
  let proxy: FaultProxy | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-admission-'));
    dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), 60_000).path;
    harness = await startHarness({
      sqlitePath: dbPath,
      extraGateways: [holder],
      // One large slot; a file is large past two chunks.
      admission: { medium: 4, large: 1, largeFileBytes: 2 * CHUNK, gatewayShare: 1, callerShare: 1 },
    });
  });
  afterAll(async () => {
    await proxy?.close();
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a gateway answered 429 + Retry-After on an upload waits, retries past its retry budget, and the file is byte-identical', async () => {
    const post = (id: string, action: string, body?: unknown) =>
      fetch(`${harness.url}/v1/gateway/commands/${id}/${action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${holder.token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    // The holder's file crosses the threshold first and takes the only large slot.
    const held = await harness.client.submit({ gatewayId: holder.id, sql: 'SELECT 1', mode: 'file' });
    expect((await post(held.id, 'ack')).status).toBe(204);
    const checksummer = await createChecksummer();
    const zeros = new Uint8Array(CHUNK);
    for (const index of [0, 1, 2]) {
      const response = await fetch(`${harness.url}/v1/gateway/commands/${held.id}/chunks/${index}`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${holder.token}`,
          'content-type': 'application/octet-stream',
          'backhaul-codec': 'identity',
          'backhaul-checksum': checksummer.digest(zeros),
          'backhaul-raw-length': String(CHUNK),
        },
        body: zeros,
      });
      expect(response.status).toBe(201);
    }
    expect(harness.server.admission().classes.large).toEqual({ limit: 1, inUse: 1, queued: 0 });

    // The real gateway behind a proxy that logs every status, with a retry budget of 2 tries.
    const logged = await startFaultProxy(harness.url);
    proxy = logged;
    const retries: { index: number; delayMs: number; error: string }[] = [];
    const gateway = await harness.startGateway({
      serverUrl: logged.url,
      retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
      logger: {
        info: () => {},
        error: () => {},
        warn: (message, data) => {
          const fields = data as { index?: number; delayMs?: number; error?: string };
          if (message === 'chunk upload failed, retrying' && fields.index !== undefined) {
            retries.push({ index: fields.index, delayMs: fields.delayMs ?? -1, error: fields.error ?? '' });
          }
        },
      },
    });
    const sql = 'SELECT * FROM orders';
    const submitted = await harness.client.submit({ gatewayId, sql, mode: 'file' });

    // Chunk 2 is where the file needs a large slot: it is refused more often than the retry
    // budget allows, and the gateway keeps waiting instead of failing the upload.
    const throttled = () =>
      logged.log.filter((e) => e.method === 'PUT' && e.path.endsWith('/chunks/2') && e.status === 429);
    await until(() => throttled().length >= 3, 'three 429s on chunk 2', 30_000);
    expect((await harness.client.get(submitted.id)).state).not.toBe('failed');

    // The holder ends its file; the large slot is free and the gateway's next try gets it.
    expect(
      (await post(held.id, 'fail', { code: 'query-failed', message: 'released by the test' })).status,
    ).toBe(204);
    const final = await harness.client.waitFor(submitted.id);
    expect(final.state).toBe('completed');
    if (final.result?.kind !== 'file') throw new Error('expected a file');

    const statuses = (suffix: string) =>
      logged.log.filter((e) => e.method === 'PUT' && e.path.endsWith(suffix)).map((e) => e.status);
    const refusals = statuses('/chunks/2').filter((s) => s === 429).length;
    expect(refusals).toBeGreaterThanOrEqual(3);
    expect(statuses('/chunks/2')).toEqual([...Array(refusals).fill(429), 201]);
    // Every 429 was followed by a retry that waited exactly the server's Retry-After.
    const chunk2Retries = retries.filter((r) => r.index === 2);
    expect(chunk2Retries).toHaveLength(refusals);
    for (const retry of chunk2Retries) {
      expect(retry.delayMs).toBe(1000);
      expect(retry.error).toMatch(/^too-many-requests: /);
    }
    // The same holds for every chunk past the threshold: one logged retry per 429, none failed.
    const all429 = logged.log.filter((e) => e.method === 'PUT' && e.status === 429).length;
    expect(retries.filter((r) => r.error.startsWith('too-many-requests')).length).toBe(all429);
    // Chunks 0 and 1 never needed the large slot.
    expect(statuses('/chunks/0')).toEqual([201]);
    expect(statuses('/chunks/1')).toEqual([201]);

    const downloaded = Buffer.from(await (await fetch(final.result.url)).arrayBuffer());
    const source = createSqliteDataSource({ filename: dbPath });
    const pieces: Uint8Array[] = [];
    for await (const piece of encodeCursorAsParquet(await source.query({ sql, params: [], columnar: true })))
      pieces.push(piece);
    await source.close();
    expect(downloaded.length).toBeGreaterThan(2 * CHUNK);
    expect(Buffer.compare(Buffer.concat(pieces), downloaded)).toBe(0);
    expect(checksummer.digest(downloaded)).toBe(final.result.checksum);
    const classes = harness.server.admission().classes;
    expect([classes.small.inUse, classes.medium.inUse, classes.large.inUse]).toEqual([0, 0, 0]);
    await gateway.stop();
  });

  it('a caller that asks to queue sees its place, and its query runs once a slot frees', async () => {
    // Fill the four medium slots with files for the hand-driven gateway, which never answers.
    const fillers = [];
    for (let i = 0; i < 4; i++) {
      fillers.push(await harness.client.submit({ gatewayId: holder.id, sql: `SELECT ${i}`, mode: 'file' }));
    }
    const refused = await fetch(`${harness.url}/v1/queries`, {
      method: 'POST',
      headers: { authorization: `Bearer ${callerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ gatewayId, sql: 'SELECT count(*) AS n FROM orders', mode: 'file' }),
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');

    const gateway = await harness.startGateway();
    const queued = await harness.client.submit({
      gatewayId,
      sql: 'SELECT count(*) AS n FROM orders',
      mode: 'file',
      whenBusy: 'queue',
    });
    expect(queued).toMatchObject({ state: 'queued', queuePosition: 1 });
    const fail = (id: string) =>
      fetch(`${harness.url}/v1/gateway/commands/${id}/fail`, {
        method: 'POST',
        headers: { authorization: `Bearer ${holder.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ code: 'query-failed', message: 'released by the test' }),
      });
    expect((await fail(fillers[0]!.id)).status).toBe(204);
    const final = await harness.client.waitFor(queued.id);
    expect(final.state).toBe('completed');
    expect(final.result).toMatchObject({ kind: 'file', rowCount: 1 });
    for (const filler of fillers.slice(1)) expect((await fail(filler.id)).status).toBe(204);
    await until(() => harness.server.admission().classes.medium.inUse === 0, 'every medium slot free');
    await gateway.stop();
  });
});
