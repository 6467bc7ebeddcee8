import {
  applyDeliveryEvent,
  type CommandRecord,
  defaultDeliveryPolicy,
  newCommandRecord,
} from '@backhaul/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRedisCommandStore } from '../src/index.js';
import { deleteKeys, redisService, redisUrl, uniqueKeyPrefix } from './redis-service.js';

/**
 * Retention (docs/redis.md, "Retention"): a record that reached a terminal state, its
 * idempotency claim and its dead-letter entry carry an expiry, and nothing else is left behind,
 * so the number of keys a deployment holds does not grow with the number of commands it ran.
 */

const policy = defaultDeliveryPolicy;
let counter = 0;

function makeRecord(gatewayId: string, patch: Partial<CommandRecord> = {}): CommandRecord {
  const id = `cmd-${++counter}`;
  const now = Date.now();
  const record = newCommandRecord(
    {
      v: 1,
      id,
      type: 'query',
      sql: 'SELECT 1',
      params: [],
      mode: 'rows',
      rowsByteLimit: 1024,
      issuedAt: now,
    },
    gatewayId,
    policy,
    now,
  );
  return { ...record, ...patch, id };
}

/** Every key under `prefix` (SCAN skips the keys that expired). */
async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

redisService.describe('Redis command store retention', () => {
  let raw: Redis;
  const prefixes: string[] = [];
  beforeAll(() => {
    raw = new Redis(redisUrl);
  });
  afterAll(async () => {
    await raw?.quit();
    for (const prefix of prefixes) await deleteKeys(prefix);
  });

  it('a finished record, its idempotency claim and a dead letter expire; a live record does not', async () => {
    const keyPrefix = uniqueKeyPrefix();
    prefixes.push(keyPrefix);
    const retentionMs = 3_600_000;
    const store = createRedisCommandStore({ url: redisUrl, keyPrefix, retentionMs });
    try {
      const live = makeRecord('gw-a');
      await store.insert(live);
      const finished = makeRecord('gw-a');
      await store.insertClaimed(finished, {
        callerId: 'caller-a',
        key: 'key-1',
        fingerprint: 'f',
        expiresAt: Date.now() + 60_000,
      });
      expect(await raw.pttl(`${keyPrefix}cmd:${finished.id}`)).toBe(-1);
      await applyDeliveryEvent(
        store,
        finished.id,
        { type: 'fail', error: { code: 'query-failed', message: 'no' } },
        policy,
      );

      expect(await raw.pttl(`${keyPrefix}cmd:${live.id}`)).toBe(-1);
      const recordTtl = await raw.pttl(`${keyPrefix}cmd:${finished.id}`);
      expect(recordTtl).toBeGreaterThan(0);
      expect(recordTtl).toBeLessThanOrEqual(retentionMs);
      const claimTtl = await raw.pttl(`${keyPrefix}idem:caller-a:key-1`);
      expect(claimTtl).toBeGreaterThan(0);
      expect(claimTtl).toBeLessThanOrEqual(60_000);

      // Past its last redelivery, the deadline dead-letters it.
      const doomed = makeRecord('gw-a', {
        state: 'dispatched',
        redeliveries: policy.maxRedeliveries,
        deadline: Date.now() - 1,
      });
      await store.insert(doomed);
      const outcome = await applyDeliveryEvent(store, doomed.id, { type: 'deadline' }, policy);
      expect(outcome.record.state).toBe('dead-lettered');
      expect(await raw.pttl(`${keyPrefix}cmd:${doomed.id}`)).toBeGreaterThan(0);
      const streamTtl = await raw.pttl(`${keyPrefix}dead-letters`);
      expect(streamTtl).toBeGreaterThan(0);
      expect(streamTtl).toBeLessThanOrEqual(retentionMs);
      expect((await store.listDeadLetters(10)).map((entry) => entry.id)).toEqual([doomed.id]);
    } finally {
      await store.close();
    }
  });

  it('the key count stays flat over many commands: what ended is gone once its retention passed', async () => {
    const keyPrefix = uniqueKeyPrefix();
    prefixes.push(keyPrefix);
    // A retention of 1 ms: every record is forgotten right after it ends.
    const store = createRedisCommandStore({ url: redisUrl, keyPrefix, retentionMs: 1 });
    const during: number[] = [];
    const after: number[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        const records = Array.from({ length: 100 }, (_, i) =>
          i % 10 === 0
            ? makeRecord(`gw-${i % 7}`, {
                state: 'dispatched',
                redeliveries: policy.maxRedeliveries,
                deadline: 1,
              })
            : makeRecord(`gw-${i % 7}`),
        );
        await Promise.all(
          records.map((record, i) =>
            store.insertClaimed(record, {
              callerId: 'c',
              key: `r${round}-${i}`,
              fingerprint: 'f',
              expiresAt: Date.now() + 200,
            }),
          ),
        );
        during.push((await keysUnder(raw, keyPrefix)).length);
        await Promise.all(
          records.map((record) =>
            applyDeliveryEvent(
              store,
              record.id,
              record.state === 'dispatched'
                ? { type: 'deadline' }
                : { type: 'complete', result: { kind: 'rows', rowCount: 0, batchCount: 0 } },
              policy,
            ),
          ),
        );
        // The claims live 200 ms; the records 1 ms past their end.
        await new Promise((resolve) => setTimeout(resolve, 300));
        after.push((await keysUnder(raw, keyPrefix)).length);
      }
    } finally {
      await store.close();
    }
    // 100 records, 100 claims, the due set and 7 undelivered sets while they run...
    expect(
      during.map((count) => count >= 200),
      JSON.stringify({ during, after }),
    ).toEqual([true, true, true]);
    // ...and nothing once they ended, round after round.
    expect(after).toEqual([0, 0, 0]);
  });
});
