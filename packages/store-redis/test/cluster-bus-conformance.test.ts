import { runClusterBusConformance, runRowLogConformance } from '@backhaul/core/testing';
import { afterAll } from 'vitest';
import { createRedisClusterBus, createRedisRowLog } from '../src/index.js';
import { deleteKeys, redisService, redisUrl, uniqueKeyPrefix } from './redis-service.js';

const keyPrefix = uniqueKeyPrefix();

// Each call opens its own connections: the two buses and logs of a suite are two instances.
redisService.describe('Redis cluster bus and row log', () => {
  afterAll(() => deleteKeys(keyPrefix));
  runClusterBusConformance('redis', async () => createRedisClusterBus({ url: redisUrl, keyPrefix }));
  runRowLogConformance('redis', async () => createRedisRowLog({ url: redisUrl, keyPrefix }));
});
