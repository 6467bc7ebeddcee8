import { createLz4Codec } from '@backhaul/codec-lz4';
import { createZstdCodec } from '@backhaul/codec-zstd';
import type { Codec, CommandStore, DataSource, ObjectStorage } from '@backhaul/core';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createFsStorage } from '@backhaul/storage-fs';
import { createS3Storage } from '@backhaul/storage-minio';
import { createRedisCommandStore } from '@backhaul/store-redis';
import type { CodecName, GatewayConfig, ServerConfig } from './config.js';

export function codecFor(name: CodecName): Codec {
  return name === 'zstd' ? createZstdCodec() : createLz4Codec();
}

type Logger = ReturnType<typeof consoleLogger>;

/** An object storage plus what the reference server does around it: prepare, sweep, describe. */
export interface ReferenceStorage {
  storage: ObjectStorage;
  /** One line for the logs, without secrets. */
  description: string;
  /** Run once before listening: creates what is missing (the bucket, the lifecycle rule). */
  prepare(logger: Logger): Promise<void>;
  /** Removes results past the retention every minute; returns a stop function. */
  startSweeper(logger: Logger): () => void;
}

const sweepIntervalMs = 60_000;

export function storageFor(config: ServerConfig): ReferenceStorage {
  const retentionMs = config.downloadTtlSeconds * 1000;
  const settings = config.storage;
  if (settings.kind === 'fs') {
    const storage = createFsStorage({ root: settings.root, retentionMs });
    return {
      storage,
      description: `fs ${settings.root}`,
      async prepare() {},
      startSweeper: () => storage.startSweeper(sweepIntervalMs),
    };
  }
  const storage = createS3Storage({
    bucket: settings.bucket,
    endpoint: settings.endpoint,
    region: settings.region,
    credentials:
      settings.accessKeyId && settings.secretAccessKey
        ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey }
        : undefined,
    forcePathStyle: settings.forcePathStyle,
    prefix: settings.prefix,
    retentionMs,
    presignExpiresSeconds: config.downloadTtlSeconds,
  });
  return {
    storage,
    description: `s3 ${settings.endpoint ?? 'AWS'} bucket ${settings.bucket} prefix '${settings.prefix}'`,
    async prepare(logger) {
      // Fails at start (wrong keys, unreachable endpoint) rather than on the first large result.
      await storage.ensureBucket();
      try {
        const applied = await storage.applyLifecycle();
        if (!applied) logger.warn('the S3 endpoint has no lifecycle rules: the sweep alone expires results');
      } catch (error) {
        // A key without s3:PutLifecycleConfiguration still runs: the sweep is the guarantee.
        logger.warn('could not set the S3 lifecycle rule; the sweep alone expires results', {
          error: error instanceof Error ? error.message : String(error),
        });
      }
    },
    startSweeper(logger) {
      let running = false;
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        storage
          .sweepExpired()
          .catch((error: unknown) =>
            logger.warn('S3 sweep failed', { error: error instanceof Error ? error.message : String(error) }),
          )
          .finally(() => {
            running = false;
          });
      }, sweepIntervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}

/** The command store, or undefined for the server's own in-memory store. */
export function storeFor(config: ServerConfig): CommandStore | undefined {
  if (config.store.kind === 'memory') return undefined;
  return createRedisCommandStore({ url: config.store.url, keyPrefix: config.store.keyPrefix });
}

export function sourceFor(config: GatewayConfig): DataSource {
  const source = config.source;
  switch (source.kind) {
    case 'sqlite':
      return createSqliteDataSource({ filename: source.path });
    case 'postgres':
      return createPostgresDataSource({ connectionString: source.url });
    case 'mysql':
      return createMysqlDataSource({ uri: source.url });
  }
}

/** Where a URL points, without its credentials, for logs. */
export function describeUrl(url: string): string {
  const parsed = new URL(url);
  parsed.username = '';
  parsed.password = '';
  return parsed.toString();
}

/** Log lines on stderr, so stdout stays free for the one machine-readable ready line. */
export function consoleLogger(who: string) {
  const line = (level: string) => (message: string, data?: object) =>
    process.stderr.write(
      `${new Date().toISOString()} ${who} ${level} ${message}${data ? ` ${JSON.stringify(data)}` : ''}\n`,
    );
  return { info: line('info'), warn: line('warn'), error: line('error') };
}
