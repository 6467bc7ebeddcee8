import { randomUUID } from 'node:crypto';
import { probeService } from '@backhaul/core/testing';
import { Redis } from 'ioredis';
import { pingRedis } from '../../../test/support/ping-redis.js';

/** The Redis the tests run against (BACKHAUL_REDIS_URL), probed once per test file. */
export const redisUrl = process.env.BACKHAUL_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const redisService = await probeService('Redis', () => pingRedis(redisUrl), {
  at: redisUrl,
  skipping: '@backhaul/store-redis tests',
  hint: 'Start Redis, or set BACKHAUL_REDIS_URL',
});

/** A key prefix no other test file or run uses. */
export function uniqueKeyPrefix(): string {
  return `backhaul-test:${randomUUID().slice(0, 12)}:`;
}

/** Deletes every key under a prefix (SCAN, not KEYS, so a shared Redis is not blocked). */
export async function deleteKeys(prefix: string): Promise<void> {
  if (!redisService.available) return;
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
