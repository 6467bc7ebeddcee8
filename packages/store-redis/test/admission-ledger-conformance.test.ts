import { runAdmissionLedgerConformance } from '@backhaul/core/testing';
import { afterAll } from 'vitest';
import { createRedisAdmissionLedger } from '../src/index.js';
import { deleteKeys, redisService, redisUrl, uniqueKeyPrefix } from './redis-service.js';

const prefixes: string[] = [];

redisService.describe('Redis admission ledger', () => {
  afterAll(async () => {
    for (const prefix of prefixes) await deleteKeys(prefix);
  });
  // A fresh prefix per test: every test starts from an empty ledger. A short lease, so the
  // reclaiming check waits a second rather than a minute.
  runAdmissionLedgerConformance('redis', async () => {
    const keyPrefix = uniqueKeyPrefix();
    prefixes.push(keyPrefix);
    return createRedisAdmissionLedger({ url: redisUrl, keyPrefix, leaseMs: 400 });
  });
});
