import { runCredentialStoreConformance } from '@backhaul/core/testing';
import { afterAll } from 'vitest';
import { createRedisCredentialStore } from '../src/index.js';
import { deleteKeys, redisService, redisUrl, uniqueKeyPrefix } from './redis-service.js';

const keyPrefix = uniqueKeyPrefix();

redisService.describe('Redis credential store', () => {
  afterAll(() => deleteKeys(keyPrefix));
  runCredentialStoreConformance('redis', async () =>
    createRedisCredentialStore({ url: redisUrl, keyPrefix }),
  );
});
