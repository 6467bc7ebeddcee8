import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from '@backhaul/core';
import { probeService, type ServiceProbe } from '@backhaul/core/testing';
import type { GatewayOptions } from '@backhaul/gateway-node';
import { createS3Storage, type S3Storage } from '@backhaul/storage-minio';
import { createRedisCommandStore, type RedisCommandStore } from '@backhaul/store-redis';
import { Redis } from 'ioredis';
import mysql from 'mysql2';
import pg from 'pg';
import S3rver from 's3rver';
import { describe } from 'vitest';
import { type Harness, startHarness } from './harness.js';
import { pingRedis } from './ping-redis.js';

/**
 * The real services the production-adapter tests run against, probed once per test file with
 * core's `probeService`: on a laptop without one, the suites that need it skip with a warning;
 * with BACKHAUL_REQUIRE_SERVICES=1 (CI) they fail instead.
 */
export const redisUrl = process.env.BACKHAUL_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const postgresUrl = process.env.BACKHAUL_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const mysqlUrl = process.env.BACKHAUL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

const skipping = 'the production-adapter end-to-end tests that need it';

export const redisService = await probeService('Redis', () => pingRedis(redisUrl), {
  at: redisUrl,
  skipping,
  hint: 'Start Redis, or set BACKHAUL_REDIS_URL',
});
export const postgresService = await probeService(
  'PostgreSQL',
  async () => void (await postgresAdmin('SELECT 1')),
  { at: postgresUrl, skipping, hint: 'Start PostgreSQL, or set BACKHAUL_POSTGRES_URL' },
);
export const mysqlService = await probeService(
  'MariaDB/MySQL',
  async () => void (await mysqlAdmin('SELECT 1')),
  {
    at: mysqlUrl,
    skipping,
    hint: 'Start MariaDB/MySQL, or set BACKHAUL_MYSQL_URL',
  },
);

/** A `describe` that runs only when every service answers: skipped (loudly) or failed otherwise. */
export function describeWithServices(services: ServiceProbe[], title: string, suite: () => void): void {
  describe.skipIf(services.some((service) => service.skip))(title, () => {
    for (const service of services) service.require();
    suite();
  });
}

/** Runs SQL on MariaDB/MySQL outside any data source (fixtures, checks), on a connection of its own. */
export function mysqlAdmin<T = unknown>(sql: string, url = mysqlUrl): Promise<T> {
  return new Promise((resolve, reject) => {
    const connection = mysql.createConnection({ uri: url, connectTimeout: 2000 });
    // An unreachable server also emits 'error' on the connection; the callback reports it.
    connection.on('error', () => undefined);
    connection.query(sql, (error, result) => {
      connection.destroy();
      if (error) reject(error);
      else resolve(result as T);
    });
  });
}

/** Runs SQL on PostgreSQL outside any data source, on a connection of its own. */
export async function postgresAdmin<R extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  url = postgresUrl,
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A name no other test file or run uses (tables, key prefixes). */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/** Deletes every key under a prefix (SCAN, not KEYS, so a shared Redis is not blocked). */
export async function deleteRedisKeys(prefix: string, url = redisUrl): Promise<number> {
  const redis = new Redis(url);
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (found.length > 0) deleted += await redis.unlink(...found);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
  return deleted;
}

export const s3rverBucket = 'backhaul-e2e';

/** s3rver in this process on a free port, with its bucket, storing into a fresh temp directory. */
export async function startS3rver(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const directory = await mkdtemp(join(tmpdir(), 'backhaul-e2e-s3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: [{ name: s3rverBucket }],
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The reference deployment in one process: Redis command store, S3 storage on s3rver, a gateway. */
export interface ProductionStack {
  harness: Harness;
  store: RedisCommandStore;
  storage: S3Storage;
  keyPrefix: string;
  close(): Promise<void>;
}

export async function startProductionStack(options: {
  dataSource: () => DataSource;
  /** The gateway's options beyond the harness's (e.g. `parquetCompression`). */
  gateway?: Partial<GatewayOptions>;
}): Promise<ProductionStack> {
  const s3 = await startS3rver();
  const keyPrefix = `${uniqueName('backhaul-e2e')}:`;
  const store = createRedisCommandStore({ url: redisUrl, keyPrefix });
  const storage = createS3Storage({
    bucket: s3rverBucket,
    endpoint: s3.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    forcePathStyle: true,
    prefix: 'results-e2e',
  });
  let harness: Harness | undefined;
  const close = async () => {
    await harness?.close();
    await store.close();
    await deleteRedisKeys(keyPrefix);
    await s3.stop();
  };
  try {
    harness = await startHarness({ store, storage, dataSource: options.dataSource });
    await harness.startGateway(options.gateway);
  } catch (error) {
    await close();
    throw error;
  }
  return { harness, store, storage, keyPrefix, close };
}
