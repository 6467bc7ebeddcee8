/**
 * A Backhaul server as a process of its own, for tests that crash and restart it (failpoints,
 * packages/server-node/src/failpoints.ts) or run several on one Redis. Run from the repository root:
 *
 *   PORT=8123 PREFIX=backhaul-test:x: STORAGE_DIR=./results node --import tsx test/support/server-process.ts
 *
 * It imports the packages from their TypeScript sources (tsx maps `@backhaul/*` through the root
 * tsconfig.json `paths`, never a stale dist/), serves on 127.0.0.1:PORT with the Redis command
 * store under PREFIX and filesystem storage in STORAGE_DIR, and prints one JSON line on stdout
 * when it is listening: {"ready":true,"pid":…,"port":…,"url":"http://127.0.0.1:…"}.
 *
 * Environment: PORT (required), PREFIX (the Redis key prefix; without it the in-memory store, and
 * no Redis is needed), STORAGE_DIR (required), CODECS (comma-separated: zstd, lz4; default none),
 * REDIS_URL (default BACKHAUL_REDIS_URL or redis://127.0.0.1:6379), ACK_TIMEOUT_MS,
 * SWEEP_INTERVAL_MS, MAX_REDELIVERIES (server defaults when unset), LOG=1 to log to stderr,
 * BACKHAUL_TEST_FAILPOINTS (read by the server itself), ADMISSION (JSON of the server's `admission`
 * limits), ADMISSION_LEASE_MS (set: admission slots counted in Redis under PREFIX, with this lease).
 */
import { createLz4Codec } from '@backhaul/codec-lz4';
import { createZstdCodec } from '@backhaul/codec-zstd';
import type { Codec } from '@backhaul/core';
import { createBackhaulServer } from '@backhaul/server-node';
import { createFsStorage } from '@backhaul/storage-fs';
import { createRedisAdmissionLedger, createRedisCommandStore } from '@backhaul/store-redis';
import {
  processCallerToken,
  processDownloadSecret,
  processGatewayId,
  processGatewayToken,
} from './server-processes.js';
import { stderrLogger } from './stderr-logger.js';

const required = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`server-process: ${name} is required`);
  return value;
};
const optionalInteger = (name: string): number | undefined => {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed)) throw new Error(`server-process: ${name} must be a whole number`);
  return parsed;
};

async function main(): Promise<void> {
  const port = Number(required('PORT'));
  const prefix = process.env.PREFIX;
  const store = prefix
    ? createRedisCommandStore({
        url: process.env.REDIS_URL ?? process.env.BACKHAUL_REDIS_URL ?? 'redis://127.0.0.1:6379',
        keyPrefix: prefix,
      })
    : undefined;
  const codecFactories: Record<string, () => Codec> = { zstd: createZstdCodec, lz4: createLz4Codec };
  const codecs = (process.env.CODECS ?? '')
    .split(',')
    .filter(Boolean)
    .map((name) => {
      const factory = codecFactories[name];
      if (!factory) throw new Error(`server-process: unknown codec ${name}`);
      return factory();
    });
  const ackTimeoutMs = optionalInteger('ACK_TIMEOUT_MS');
  const maxRedeliveries = optionalInteger('MAX_REDELIVERIES');
  const leaseMs = optionalInteger('ADMISSION_LEASE_MS');
  const admissionLedger =
    store && leaseMs !== undefined
      ? createRedisAdmissionLedger({ redis: store.redis, keyPrefix: prefix, leaseMs })
      : undefined;
  const server = createBackhaulServer({
    store,
    storage: createFsStorage({ root: required('STORAGE_DIR') }),
    codecs,
    gateways: [{ id: processGatewayId, token: processGatewayToken }],
    callerTokens: [processCallerToken],
    downloadSecret: processDownloadSecret,
    delivery: {
      ...(ackTimeoutMs === undefined ? {} : { ackTimeoutMs }),
      ...(maxRedeliveries === undefined ? {} : { maxRedeliveries }),
    },
    sweepIntervalMs: optionalInteger('SWEEP_INTERVAL_MS'),
    ...(process.env.ADMISSION ? { admission: JSON.parse(process.env.ADMISSION) } : {}),
    ...(admissionLedger ? { admissionLedger } : {}),
    ...(process.env.LOG === '1' ? { logger: stderrLogger } : {}),
  });
  // Ready means Redis answers: a request served before the store's connection is up would queue
  // its reads behind the connection handshake, after writes other processes made meanwhile.
  await store?.redis.ping();
  const { url } = await server.listen(port, '127.0.0.1');

  const shutdown = async () => {
    await server.close();
    await store?.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());

  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, port, url })}\n`);
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
