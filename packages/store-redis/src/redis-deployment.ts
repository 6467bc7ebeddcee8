import type { ClusterBus, RowLog } from '@backhaul/core';
import { Redis } from 'ioredis';
import { createRedisClusterBus } from './redis-cluster-bus.js';
import { createRedisCommandStore, type RedisCommandStore } from './redis-command-store.js';
import { closeConnection, defaultKeyPrefix, defaultRedisUrl } from './redis-connection.js';
import { createRedisCredentialStore, type RedisCredentialStore } from './redis-credential-store.js';
import { createRedisRowLog } from './redis-row-log.js';

export interface RedisDeploymentOptions {
  /** Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prepended to every key and channel; every instance of one deployment uses the same. Default `backhaul:`. */
  keyPrefix?: string;
  /** How long an unended query's rows are kept without a new batch; default 24 h. */
  rowIdleTtlMs?: number;
}

/**
 * Everything server instances share through one Redis, on one connection (plus the bus's
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
  /** The shared parts under the names `createBackhaulServer` takes them. */
  readonly serverOptions: {
    store: RedisCommandStore;
    credentialStore: RedisCredentialStore;
    bus: ClusterBus;
    rowLog: RowLog;
  };
  /** Closes every part, then the connection. */
  close(): Promise<void>;
}

export function createRedisDeployment(options: RedisDeploymentOptions = {}): RedisDeployment {
  const keyPrefix = options.keyPrefix ?? defaultKeyPrefix;
  const redis = new Redis(options.url ?? defaultRedisUrl, { maxRetriesPerRequest: 1 });
  // Each call that fails reports it; the connection reconnects on its own.
  redis.on('error', () => undefined);
  const store = createRedisCommandStore({ redis, keyPrefix });
  const credentialStore = createRedisCredentialStore({ redis, keyPrefix });
  const bus = createRedisClusterBus({ redis, keyPrefix });
  const rowLog = createRedisRowLog({ redis, keyPrefix, idleTtlMs: options.rowIdleTtlMs });
  // A part added here is added to `parts` too, so close() reaches it.
  const parts = [store, credentialStore, bus, rowLog];
  let closing: Promise<void> | undefined;
  return {
    redis,
    store,
    credentialStore,
    bus,
    rowLog,
    serverOptions: { store, credentialStore, bus, rowLog },
    close() {
      closing ??= (async () => {
        for (const part of parts) await part.close().catch(() => undefined);
        await closeConnection(redis);
      })();
      return closing;
    },
  };
}
