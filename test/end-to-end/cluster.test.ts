import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BackhaulClient, createBackhaulClient } from '@backhaul/client';
import { createZstdCodec } from '@backhaul/codec-zstd';
import type { QueryView } from '@backhaul/core';
import { createGateway, type Gateway } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type Cluster,
  clusterCallerToken,
  clusterGateway,
  haproxyBinary,
  nginxBinary,
  startCluster,
} from '../support/cluster.js';
import { countingSource } from '../support/counting-source.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { type PrivateRedis, redisServerBinary, startPrivateRedis } from '../support/private-redis.js';
import {
  deleteRedisKeys,
  describeWithServices,
  redisService,
  redisUrl,
  s3rverBucket,
  startS3rver,
  uniqueName,
} from '../support/production-services.js';
import { until } from '../support/until.js';

/**
 * Three reference servers (examples/src/server.ts, each a process) on one Redis (the suite's own,
 * so it can crash it) and one s3rver bucket, behind haproxy in round-robin with no stickiness.
 * The caller and the gateway know only the proxy's address; the gateway reaches it through a
 * recording proxy, so the tests can count which chunk was sent how often.
 */

const BLOB_ROWS = 100_000;
const BLOB_BYTES = 1000;
const FILE_SQL = 'SELECT id, payload FROM blobs ORDER BY id';
const ITEM_SQL = (tag: number) => `SELECT id, name FROM items WHERE id <= 40 /* ${tag} */ ORDER BY id`;

describeWithServices([haproxyBinary, redisServerBinary], 'a cluster behind a round-robin proxy', () => {
  let dir: string;
  let redis: PrivateRedis;
  let s3: Awaited<ReturnType<typeof startS3rver>>;
  let cluster: Cluster;
  let recorder: FaultProxy;
  let gateway: Gateway;
  let source: ReturnType<typeof countingSource>;
  let caller: BackhaulClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-cluster-test-'));
    const dbPath = join(dir, 'cluster.sqlite');
    const db = new Database(dbPath);
    // Incompressible rows: the file stays at 100 MB whatever the page and chunk codecs do.
    db.exec(`CREATE TABLE blobs (id INTEGER PRIMARY KEY, payload BLOB NOT NULL);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${BLOB_ROWS})
      INSERT INTO blobs SELECT i, randomblob(${BLOB_BYTES}) FROM n;
      CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
      INSERT INTO items SELECT i, 'item-' || i FROM n;`);
    db.close();
    redis = await startPrivateRedis(dir);
    s3 = await startS3rver();
    cluster = await startCluster({
      instances: 3,
      redisUrl: redis.url,
      keyPrefix: `${uniqueName('cluster')}:`,
      s3: { endpoint: s3.endpoint, bucket: s3rverBucket },
    });
    recorder = await startFaultProxy(cluster.url);
    source = countingSource(createSqliteDataSource({ filename: dbPath }));
    gateway = createGateway({
      serverUrl: recorder.url,
      token: clusterGateway.token,
      dataSource: source,
      codecs: [createZstdCodec()],
      reconnect: { baseDelayMs: 50, maxDelayMs: 500 },
    });
    await gateway.start();
    caller = createBackhaulClient({ url: cluster.url, token: clusterCallerToken });
  }, 180_000);

  afterAll(async () => {
    await gateway?.stop();
    await recorder?.close();
    await cluster?.stop();
    await s3?.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const direct = (instance: number) =>
    createBackhaulClient({ url: cluster.instances[instance]!.url, token: clusterCallerToken });

  const runFile = async (): Promise<{ view: QueryView; sha256: string; bytes: number }> => {
    const submitted = await caller.submit({ gatewayId: clusterGateway.id, sql: FILE_SQL, mode: 'file' });
    const view = await caller.waitFor(submitted.id);
    expect(view.state).toBe('completed');
    if (view.result?.kind !== 'file') throw new Error(`expected a file result, got ${JSON.stringify(view)}`);
    const response = await fetch(view.result.url);
    expect(response.status).toBe(200);
    const body = new Uint8Array(await response.arrayBuffer());
    expect(body.length).toBe(view.result.size);
    return { view, sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length };
  };

  const chunkPuts = (commandId: string) =>
    recorder.log.filter((entry) => entry.method === 'PUT' && entry.path.includes(`/${commandId}/chunks/`));

  let firstFile: { sha256: string; bytes: number } | undefined;

  it('a 100 MB file whose chunks land on every instance is stored whole and byte-identical', async () => {
    const before = await cluster.requestsPerInstance();
    const file = await runFile();
    firstFile = file;
    expect(file.bytes).toBeGreaterThan(BLOB_ROWS * BLOB_BYTES);
    const after = await cluster.requestsPerInstance();
    // Round-robin: every instance took a real share of the ~200 chunk PUTs.
    for (let i = 0; i < 3; i++) expect(after[i]! - before[i]!).toBeGreaterThan(30);
    const puts = chunkPuts(file.view.id);
    const indexes = new Set(puts.map((entry) => entry.path.split('/').pop()));
    expect(indexes.size).toBe(puts.filter((entry) => entry.status === 201).length);
  }, 300_000);

  it('an instance SIGKILLed mid-upload: the file completes through the others, no acknowledged chunk is sent again, same bytes', async () => {
    const submitted = await caller.submit({ gatewayId: clusterGateway.id, sql: FILE_SQL, mode: 'file' });
    await until(
      () => chunkPuts(submitted.id).filter((entry) => entry.status === 201).length >= 40,
      'chunks to flow',
      120_000,
    );
    await cluster.instances[1]!.process.kill();
    const view = await caller.waitFor(submitted.id);
    expect(view.state).toBe('completed');
    if (view.result?.kind !== 'file') throw new Error('expected a file');
    const body = new Uint8Array(await (await fetch(view.result.url)).arrayBuffer());
    expect(createHash('sha256').update(body).digest('hex')).toBe(firstFile?.sha256);
    // An index acknowledged (200/201) is never PUT again afterwards.
    const acknowledged = new Set<string>();
    for (const entry of chunkPuts(submitted.id)) {
      const index = entry.path.split('/').pop()!;
      expect(acknowledged.has(index), `chunk ${index} sent again after its acknowledgement`).toBe(false);
      if (entry.status === 200 || entry.status === 201) acknowledged.add(index);
    }
    await cluster.instances[1]!.restart();
  }, 300_000);

  it('rows submitted on one instance are followed live and read on the others', async () => {
    const submitted = await direct(0).submit({
      gatewayId: clusterGateway.id,
      sql: ITEM_SQL(1),
      mode: 'rows',
    });
    const seen: unknown[][] = [];
    for await (const event of direct(1).follow(submitted.id)) {
      if (event.type === 'rows') seen.push(...event.rows);
      if (event.type === 'result') {
        expect(event.query.state).toBe('completed');
        break;
      }
    }
    const expected = Array.from({ length: 40 }, (_, i) => [i + 1, `item-${i + 1}`]);
    expect(seen).toEqual(expected);
    expect((await direct(2).rows(submitted.id)).rows).toEqual(expected);
    expect((await caller.rows(submitted.id)).rows).toEqual(expected);
  }, 120_000);

  it('Redis crashes and restarts under the cluster: every query submitted around it runs exactly once', async () => {
    const first = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        caller.submit({ gatewayId: clusterGateway.id, sql: ITEM_SQL(100 + i), mode: 'rows' }),
      ),
    );
    await redis.crash();
    await redis.restart();
    const second = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        caller.submit({ gatewayId: clusterGateway.id, sql: ITEM_SQL(200 + i), mode: 'rows' }),
      ),
    );
    const views = await Promise.all([...first, ...second].map((query) => caller.waitFor(query.id)));
    expect(views.map((view) => view.state)).toEqual(Array(20).fill('completed'));
    for (const tag of [...Array(10).keys()].flatMap((i) => [100 + i, 200 + i])) {
      expect(source.queries.filter((sql) => sql === ITEM_SQL(tag))).toHaveLength(1);
    }
  }, 180_000);

  it('50 queries through the proxy: none lost, none run twice', async () => {
    const submitted = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        caller.submit({ gatewayId: clusterGateway.id, sql: ITEM_SQL(1000 + i), mode: 'rows' }),
      ),
    );
    const views = await Promise.all(submitted.map((query) => caller.waitFor(query.id)));
    expect(views.filter((view) => view.state === 'completed')).toHaveLength(50);
    for (let i = 0; i < 50; i++)
      expect(source.queries.filter((sql) => sql === ITEM_SQL(1000 + i))).toHaveLength(1);
  }, 180_000);
});

describeWithServices([nginxBinary, redisService], 'the same cluster behind nginx in round-robin', () => {
  let dir: string;
  let s3: Awaited<ReturnType<typeof startS3rver>>;
  let cluster: Cluster;
  let gateway: Gateway;
  let source: ReturnType<typeof countingSource>;
  const keyPrefix = `${uniqueName('cluster-nginx')}:`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-cluster-nginx-'));
    const dbPath = join(dir, 'items.sqlite');
    const db = new Database(dbPath);
    db.exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
      INSERT INTO items SELECT i, 'item-' || i FROM n;`);
    db.close();
    s3 = await startS3rver();
    cluster = await startCluster({
      instances: 3,
      redisUrl,
      keyPrefix,
      s3: { endpoint: s3.endpoint, bucket: s3rverBucket },
      proxy: 'nginx',
    });
    source = countingSource(createSqliteDataSource({ filename: dbPath }));
    gateway = createGateway({ serverUrl: cluster.url, token: clusterGateway.token, dataSource: source });
    await gateway.start();
  }, 180_000);

  afterAll(async () => {
    await gateway?.stop();
    await cluster?.stop();
    await s3?.stop();
    await deleteRedisKeys(keyPrefix);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('20 queries through nginx, each followed live through it: all rows, none lost, none run twice', async () => {
    const caller = createBackhaulClient({ url: cluster.url, token: clusterCallerToken });
    const expected = Array.from({ length: 40 }, (_, i) => [i + 1, `item-${i + 1}`]);
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const submitted = await caller.submit({
          gatewayId: clusterGateway.id,
          sql: ITEM_SQL(i),
          mode: 'rows',
        });
        const seen: unknown[][] = [];
        let state: string | undefined;
        for await (const event of caller.follow(submitted.id)) {
          if (event.type === 'rows') seen.push(...event.rows);
          if (event.type === 'result') {
            state = event.query.state;
            break;
          }
        }
        return { seen, state };
      }),
    );
    for (const result of results) {
      expect(result.state).toBe('completed');
      expect(result.seen).toEqual(expected);
    }
    for (let i = 0; i < 20; i++) expect(source.queries.filter((sql) => sql === ITEM_SQL(i))).toHaveLength(1);
  }, 180_000);
});
