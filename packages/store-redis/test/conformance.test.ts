import { runCommandStoreConformance } from '@backhaul/core/testing';
import { afterAll, describe } from 'vitest';
import { createRedisCommandStore } from '../src/index.js';
import { deleteKeys, redisUrl, requireRedis, skipRedisSuites, uniqueKeyPrefix } from './redis-service.js';

const keyPrefix = uniqueKeyPrefix();

describe.skipIf(skipRedisSuites)('Redis command store', () => {
  requireRedis();
  afterAll(() => deleteKeys(keyPrefix));
  runCommandStoreConformance('redis', async () => createRedisCommandStore({ url: redisUrl, keyPrefix }));
});
