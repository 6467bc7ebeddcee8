import { createLz4Codec } from '@backhaul/codec-lz4';
import { createZstdCodec } from '@backhaul/codec-zstd';
import {
  type AdmissionLedger,
  BackhaulError,
  type ClusterBus,
  type Codec,
  type CommandStore,
  type CredentialStore,
  createMemoryCommandStore,
  type DataSource,
  fieldsFirstLogger,
  type Logger,
  type ObjectStorage,
  type RowLog,
  type UploadLedger,
} from '@backhaul/core';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createFsStorage } from '@backhaul/storage-fs';
import { createS3Storage } from '@backhaul/storage-minio';
import { createRedisDeployment } from '@backhaul/store-redis';
import pino from 'pino';
import {
  type CodecName,
  ConfigError,
  type GatewayConfig,
  type LogLevel,
  type ServerConfig,
} from './config.js';

export function codecFor(name: CodecName): Codec {
  return name === 'zstd' ? createZstdCodec() : createLz4Codec();
}

/** An object storage plus what the reference server does around it: prepare, sweep, describe. */
export interface ReferenceStorage {
  storage: ObjectStorage;
  /** One line for the logs, without secrets. */
  description: string;
  /** Run once before listening: creates what is missing (the bucket, the lifecycle rule). */
  prepare(logger: Logger): Promise<void>;
  /** Removes results past the retention every `storageSweepIntervalSeconds`; returns a stop function. */
  startSweeper(logger: Logger): () => void;
}

export function storageFor(config: ServerConfig): ReferenceStorage {
  const sweepIntervalMs = config.storageSweepIntervalSeconds * 1000;
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

/** A command store plus what the reference server does around it. */
export interface ReferenceStore {
  store: CommandStore;
  /** Enrolled gateways, beside the command log (same Redis and prefix); undefined: in memory. */
  credentialStore: CredentialStore | undefined;
  /**
   * What every instance of a deployment shares, under the server's option names: with Redis the
   * command store, enrolments, bus, row log, admission slots and upload ledger (docs/cluster.md); in
   * memory the command store alone, with the configured retention.
   */
  serverOptions: {
    store?: CommandStore;
    credentialStore?: CredentialStore;
    bus?: ClusterBus;
    rowLog?: RowLog;
    uploadLedger?: UploadLedger;
    admissionLedger?: AdmissionLedger;
  };
  description: string;
  /** Run once before listening: fails when the store does not answer. */
  prepare(logger: Logger): Promise<void>;
  close(): Promise<void>;
}

const redisStartTimeoutMs = 10_000;

export function storeFor(config: ServerConfig): ReferenceStore {
  const settings = config.store;
  // Ended commands, claims and dead letters are forgotten after this (docs/cluster.md).
  const retentionMs = config.retentionSeconds * 1000;
  if (settings.kind === 'memory') {
    const store = createMemoryCommandStore({ retentionMs });
    return {
      store,
      credentialStore: undefined,
      serverOptions: { store },
      description: 'memory',
      async prepare() {},
      close: () => store.close(),
    };
  }
  // One connection for all: enrolments, the bus and the row log live where the command log
  // lives, and every server on this Redis and prefix shares them.
  const deployment = createRedisDeployment({ url: settings.url, keyPrefix: settings.keyPrefix, retentionMs });
  const { store, credentialStore } = deployment;
  const where = describeUrl(settings.url);
  let logger: Logger = jsonLogger('server', config.logLevel);
  let lastError = 'no answer';
  // ioredis reconnects by itself; without a listener every failed attempt is an "unhandled error".
  store.redis.on('error', (error: Error) => {
    if (error.message !== lastError)
      logger.warn('Redis connection error', { redis: where, error: error.message });
    lastError = error.message;
  });
  return {
    store,
    credentialStore,
    serverOptions: deployment.serverOptions,
    description: `redis ${where} prefix '${settings.keyPrefix}'`,
    async prepare(startLogger) {
      logger = startLogger;
      // Refuse to start rather than accept queries no store can persist (protocol §7).
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ConfigError(
                `Redis at ${where} did not answer within ${redisStartTimeoutMs / 1000} s (${lastError})`,
              ),
            ),
          redisStartTimeoutMs,
        );
      });
      try {
        await Promise.race([store.redis.ping(), timeout]);
      } catch (error) {
        await deployment.close().catch(() => undefined);
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => deployment.close(),
  };
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

/**
 * Runs a program's start-up; on failure prints one line (a configuration mistake or a refusal
 * from the server needs no stack trace) and exits with status 1, so a supervisor sees the failure at once.
 */
export async function startOrExit<T>(who: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const message =
      error instanceof ConfigError || BackhaulError.isInstance(error)
        ? error.message
        : error instanceof Error
          ? (error.stack ?? error.message)
          : String(error);
    process.stderr.write(`${who} failed to start: ${message}\n`);
    process.exit(1);
  }
}

/**
 * Structured JSON log lines (pino) on stderr, so stdout stays free for the one machine-readable
 * ready line. Each line is one JSON object: `level`, `time`, `service` (`server` or `gateway`),
 * `msg`, and the line's data; lines about a command carry `commandId`, `gatewayId` and `traceId`
 * (docs/operations.md, "Tracing and logs"). Lines below `level` are not written.
 */
export function jsonLogger(service: string, level: LogLevel = 'info'): Logger {
  // Synchronous writes: a line logged just before the process exits is not lost with it.
  return fieldsFirstLogger(pino({ level, base: { service } }, pino.destination({ dest: 2, sync: true })));
}
