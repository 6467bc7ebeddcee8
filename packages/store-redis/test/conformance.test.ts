import { runCommandStoreConformance } from '@backhaul/core/testing';
import { afterAll } from 'vitest';
import { createRedisCommandStore } from '../src/index.js';
import { deleteKeys, redisService, redisUrl, uniqueKeyPrefix } from './redis-service.js';

const keyPrefix = uniqueKeyPrefix();

redisService.describe('Redis command store', () => {
  afterAll(() => deleteKeys(keyPrefix));
  runCommandStoreConformance('redis', async () => createRedisCommandStore({ url: redisUrl, keyPrefix }));
});
