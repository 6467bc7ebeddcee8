import type { AdmissionLedger, ClusterBus, RowLog, UploadLedger } from '@backhaul/core';
import { Redis } from 'ioredis';
import { createRedisAdmissionLedger } from './redis-admission-ledger.js';
import { createRedisClusterBus } from './redis-cluster-bus.js';
import { createRedisCommandStore, type RedisCommandStore } from './redis-command-store.js';
import { closeConnection, defaultKeyPrefix, defaultRedisUrl } from './redis-connection.js';
import { createRedisCredentialStore, type RedisCredentialStore } from './redis-credential-store.js';
import { createRedisRowLog } from './redis-row-log.js';
import { createRedisUploadLedger } from './redis-upload-ledger.js';

export interface RedisDeploymentOptions {
  /** Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prepended to every key and channel; every instance of one deployment uses the same. Default `backhaul:`. */
  keyPrefix?: string;
  /** How long an unended query's rows are kept without a new batch; default 24 h. */
  rowIdleTtlMs?: number;
  /** How long ended command records and dead letters are kept; default 7 days. */
  retentionMs?: number;
  /** How long an upload's chunk receipts and result are kept after its last change; default 7 days. */
  uploadRetentionMs?: number;
}

/**
 * Everything server instances share through one Redis (command log, enrolments, bus, row log,
 * admission slots), on one connection (plus the bus's
 * subscriber connection). Spread `serverOptions` into `createBackhaulServer`:
 *
 *     const redis = createRedisDeployment({ url: process.env.REDIS_URL });
 *     const server = createBackhaulServer({ ...redis.serverOptions, storage, gateways, callerTokens });
 *     // on shutdown: await server.close(); await redis.close();
 */
export interface RedisDeployment {
  readonly redis: Redis;
  readonly store: RedisCommandStore;
  readonly credentialStore: RedisCredentialStore;
  readonly bus: ClusterBus;
  readonly rowLog: RowLog;
  readonly uploadLedger: UploadLedger;
  /** Admission slots counted across the instances (docs/cluster.md, "Limits and retention"). */
  readonly admissionLedger: AdmissionLedger;
  /** The shared parts under the names `createBackhaulServer` takes them. */
  readonly serverOptions: {
    store: RedisCommandStore;
    credentialStore: RedisCredentialStore;
    bus: ClusterBus;
    rowLog: RowLog;
    uploadLedger: UploadLedger;
    admissionLedger: AdmissionLedger;
  };
  /** Closes every part, then the connection. */
  close(): Promise<void>;
}

export function createRedisDeployment(options: RedisDeploymentOptions = {}): RedisDeployment {
  const keyPrefix = options.keyPrefix ?? defaultKeyPrefix;
  const redis = new Redis(options.url ?? defaultRedisUrl, { maxRetriesPerRequest: 1 });
  // Each call that fails reports it; the connection reconnects on its own.
  redis.on('error', () => undefined);
  const store = createRedisCommandStore({ redis, keyPrefix, retentionMs: options.retentionMs });
  const credentialStore = createRedisCredentialStore({ redis, keyPrefix });
  const bus = createRedisClusterBus({ redis, keyPrefix });
  const rowLog = createRedisRowLog({ redis, keyPrefix, idleTtlMs: options.rowIdleTtlMs });
  const uploadLedger = createRedisUploadLedger({ redis, keyPrefix, retentionMs: options.uploadRetentionMs });
  // A part added here is added to `parts` too, so close() reaches it.
  const admissionLedger = createRedisAdmissionLedger({ redis, keyPrefix });
  const parts = [store, credentialStore, bus, rowLog, uploadLedger, admissionLedger];
  let closing: Promise<void> | undefined;
  return {
    redis,
    store,
    credentialStore,
    bus,
    rowLog,
    uploadLedger,
    admissionLedger,
    serverOptions: { store, credentialStore, bus, rowLog, uploadLedger, admissionLedger },
    close() {
      closing ??= (async () => {
        for (const part of parts) await part.close().catch(() => undefined);
        await closeConnection(redis);
      })();
      return closing;
    },
  };
}
