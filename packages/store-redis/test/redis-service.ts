import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { beforeAll } from 'vitest';

/**
 * The Redis the tests run against, and whether it answers. On a laptop without Redis the suites
 * skip with a warning; CI sets BACKHAUL_REQUIRE_SERVICES=1, which turns that skip into a failure.
 */
export const redisUrl = process.env.BACKHAUL_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const servicesRequired = process.env.BACKHAUL_REQUIRE_SERVICES === '1';

async function ping(): Promise<string | undefined> {
  const probe = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The socket error (e.g. ECONNREFUSED) says more than connect()'s "Connection is closed".
  let socketError: string | undefined;
  probe.on('error', (error: Error) => {
    socketError ??= error.message;
  });
  try {
    await probe.connect();
    await probe.ping();
    return undefined;
  } catch (error) {
    return socketError ?? (error instanceof Error ? error.message : String(error));
  } finally {
    probe.disconnect();
  }
}

const unreachable = await ping();
export const redisReachable = unreachable === undefined;
/** True when the suites should not run at all: no Redis, and nobody requires it. */
export const skipRedisSuites = !redisReachable && !servicesRequired;

if (skipRedisSuites) {
  console.warn(
    `\n⚠ SKIPPING @backhaul/store-redis tests: Redis at ${redisUrl} is unreachable (${unreachable}). ` +
      'Start Redis, or set BACKHAUL_REDIS_URL; BACKHAUL_REQUIRE_SERVICES=1 makes this a failure.\n',
  );
}

/** Call first inside the suite: fails every test of it when Redis is required but unreachable. */
export function requireRedis(): void {
  beforeAll(() => {
    if (!redisReachable) {
      throw new Error(
        `Redis at ${redisUrl} is unreachable (${unreachable}) and BACKHAUL_REQUIRE_SERVICES=1 requires it`,
      );
    }
  });
}

/** A key prefix no other test file or run uses. */
export function uniqueKeyPrefix(): string {
  return `backhaul-test:${randomUUID().slice(0, 12)}:`;
}

/** Deletes every key under a prefix (SCAN, not KEYS, so a shared Redis is not blocked). */
export async function deleteKeys(prefix: string): Promise<void> {
  if (!redisReachable) return;
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (found.length > 0) await redis.unlink(...found);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}
