import { runUploadLedgerConformance } from '@backhaul/core/testing';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { createRedisUploadLedger } from '../src/index.js';
import { deleteKeys, redisService, redisUrl, uniqueKeyPrefix } from './redis-service.js';

const keyPrefix = uniqueKeyPrefix();

redisService.describe('Redis upload ledger', () => {
  afterAll(() => deleteKeys(keyPrefix));
  runUploadLedgerConformance('redis', async () => createRedisUploadLedger({ url: redisUrl, keyPrefix }));

  it("an upload's record expires retentionMs after its last change", async () => {
    const retentionMs = 60_000;
    const ledger = createRedisUploadLedger({ url: redisUrl, keyPrefix, retentionMs });
    const redis = new Redis(redisUrl);
    try {
      const rules = { chunkSize: 10, chunkWindow: 4 };
      await ledger.recordChunk('expiring', { index: 0, checksum: '0000000000000001', size: 10 }, rules);
      const ttl = await redis.pttl(`${keyPrefix}upload:expiring`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(retentionMs);
      await ledger.abort('expiring');
      expect(await redis.pttl(`${keyPrefix}upload:expiring`)).toBeGreaterThan(0);
    } finally {
      await redis.quit();
      await ledger.close();
    }
  });
});
