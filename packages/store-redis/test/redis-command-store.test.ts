import {
  applyDeliveryEvent,
  BackhaulError,
  type CommandRecord,
  type CommandStore,
  type DeliveryPolicy,
  defaultDeliveryPolicy,
  newCommandRecord,
} from '@backhaul/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisCommandStore, type RedisCommandStore } from '../src/index.js';
import { deleteKeys, redisService, redisUrl, uniqueKeyPrefix } from './redis-service.js';

const keyPrefix = uniqueKeyPrefix();
const policy: DeliveryPolicy = defaultDeliveryPolicy;
let counter = 0;
const uniqueId = (what: string) => `${what}-${++counter}`;

function makeRecord(patch: Partial<CommandRecord> = {}, createdAt = Date.now()): CommandRecord {
  const id = patch.id ?? uniqueId('cmd');
  const record = newCommandRecord(
    {
      v: 1,
      id,
      type: 'query',
      sql: 'SELECT * FROM orders WHERE placed_at > ?',
      params: ['2024-01-01', 7, false, null],
      mode: 'auto',
      rowsByteLimit: 1_048_576,
      issuedAt: createdAt,
    },
    patch.gatewayId ?? uniqueId('gw'),
    policy,
    createdAt,
  );
  return { ...record, ...patch, id };
}

/** Where a record stands in the two indexes, read straight from Redis. */
async function indexesOf(redis: Redis, record: Pick<CommandRecord, 'id' | 'gatewayId'>) {
  const [due, undelivered] = await Promise.all([
    redis.zscore(`${keyPrefix}due`, record.id),
    redis.zscore(`${keyPrefix}gw:${record.gatewayId}:undelivered`, record.id),
  ]);
  return {
    due: due === null ? null : Number(due),
    undelivered: undelivered === null ? null : Number(undelivered),
  };
}

redisService.describe('Redis command store', () => {
  let raw: Redis;
  beforeAll(() => {
    raw = new Redis(redisUrl);
  });
  afterAll(async () => {
    await raw?.quit();
    await deleteKeys(keyPrefix);
  });

  describe('a restarted server reads back every record, field and state the previous process wrote', () => {
    it('a fresh instance on a new connection gets equal records and lists the undelivered ones', async () => {
      const gatewayId = uniqueId('gw');
      const base = Date.now() - 10_000;
      const records: CommandRecord[] = [
        makeRecord({ gatewayId }, base + 1),
        makeRecord(
          { gatewayId, state: 'dispatched', version: 4, redeliveries: 1, deadline: base + 30_000 },
          base,
        ),
        makeRecord({ gatewayId, state: 'acknowledged', deadline: base + 300_000 }, base + 2),
        makeRecord(
          { gatewayId, state: 'running', progress: { rows: 12, bytes: 4096, stage: 'encoding' } },
          base + 3,
        ),
        makeRecord(
          {
            gatewayId,
            state: 'completed',
            deadline: undefined,
            result: {
              kind: 'file',
              format: 'parquet',
              size: 104_857_600,
              checksum: 'fedcba9876543210',
              rowCount: 2_000_000,
              chunkCount: 200,
              key: 'results/x.parquet',
            },
          },
          base + 4,
        ),
        makeRecord(
          {
            gatewayId,
            state: 'failed',
            deadline: undefined,
            error: { code: 'query-failed', message: 'relation "orders" does not exist' },
          },
          base + 5,
        ),
        makeRecord({
          gatewayId,
          state: 'expired',
          deadline: undefined,
          reason: 'the gateway did not connect in time',
        }),
        makeRecord({ gatewayId, state: 'dead-lettered', deadline: undefined, reason: 'no delivery ack' }),
      ];

      const before = createRedisCommandStore({ url: redisUrl, keyPrefix });
      for (const record of records) await before.insert(record);
      await before.close();
      expect(before.redis.status).toBe('end');

      const after = createRedisCommandStore({ url: redisUrl, keyPrefix });
      try {
        for (const record of records) {
          const loaded = await after.get(record.id);
          expect(loaded).toStrictEqual(record);
        }
        expect((await after.listUndelivered(gatewayId)).map((r) => r.id)).toEqual([
          records[1]!.id,
          records[0]!.id,
        ]);
        // The restarted server resumes the timers of everything not terminal.
        const due = new Set((await after.listDue(Number.MAX_SAFE_INTEGER, 10_000)).map((r) => r.id));
        expect(records.filter((r) => due.has(r.id)).map((r) => r.state)).toEqual([
          'pending',
          'dispatched',
          'acknowledged',
          'running',
        ]);
      } finally {
        await after.close();
      }
    });
  });

  describe('two servers racing the ack deadline of one record: exactly one claims the redelivery', () => {
    let serverA: RedisCommandStore;
    let serverB: RedisCommandStore;
    beforeAll(() => {
      serverA = createRedisCommandStore({ url: redisUrl, keyPrefix });
      serverB = createRedisCommandStore({ url: redisUrl, keyPrefix });
    });
    afterAll(async () => {
      await serverA?.close();
      await serverB?.close();
    });

    /** Counts compare-and-sets that lost, to prove the race really happened. */
    const counting = (store: CommandStore, lost: { count: number }): CommandStore => ({
      ...store,
      async compareAndSet(next) {
        const won = await store.compareAndSet(next);
        if (!won) lost.count++;
        return won;
      },
    });

    const race = async (records: CommandRecord[]) => {
      for (const record of records) await serverA.insert(record);
      const lost = { count: 0 };
      const a = counting(serverA, lost);
      const b = counting(serverB, lost);
      const outcomes = await Promise.all(
        records.map((record) =>
          Promise.all([
            applyDeliveryEvent(a, record.id, { type: 'deadline' }, policy),
            applyDeliveryEvent(b, record.id, { type: 'deadline' }, policy),
          ]),
        ),
      );
      return { outcomes, lost: lost.count };
    };

    it('200 dispatched records past their ack deadline: one change each, redeliveries === 1', async () => {
      const gatewayId = uniqueId('gw');
      const records = Array.from({ length: 200 }, () =>
        makeRecord({ gatewayId, state: 'dispatched', version: 2, deadline: Date.now() - 1 }),
      );
      const { outcomes, lost } = await race(records);

      for (const [fromA, fromB] of outcomes) {
        expect([fromA.changed, fromB.changed].filter(Boolean)).toHaveLength(1);
      }
      // Both servers read the same version before either wrote, for most records.
      expect(lost).toBeGreaterThan(0);
      for (const record of records) {
        const stored = await serverB.get(record.id);
        expect(stored?.state).toBe('pending');
        expect(stored?.redeliveries).toBe(1);
        expect(stored?.version).toBe(3);
      }
      const undelivered = await serverB.listUndelivered(gatewayId);
      expect(undelivered).toHaveLength(200);
    });

    it('at the redelivery limit, exactly one dead-letter entry is written per record', async () => {
      const records = Array.from({ length: 50 }, () =>
        makeRecord({ state: 'dispatched', redeliveries: policy.maxRedeliveries, deadline: Date.now() - 1 }),
      );
      const { outcomes } = await race(records);
      for (const [fromA, fromB] of outcomes) {
        expect([fromA.changed, fromB.changed].filter(Boolean)).toHaveLength(1);
      }
      const ids = new Set(records.map((r) => r.id));
      const letters = (await serverA.listDeadLetters(100_000)).filter((letter) => ids.has(letter.id));
      expect(letters).toHaveLength(50);
      expect(new Set(letters.map((letter) => letter.id)).size).toBe(50);
    });
  });

  describe('dead-lettering writes the dead-letter entry in the same atomic step as the transition', () => {
    let store: RedisCommandStore;
    beforeAll(() => {
      store = createRedisCommandStore({ url: redisUrl, keyPrefix });
    });
    afterAll(async () => {
      await store?.close();
    });

    it('the entry carries id, reason and time, and the record leaves the due and undelivered sets', async () => {
      const record = makeRecord({
        state: 'dispatched',
        redeliveries: policy.maxRedeliveries,
        deadline: 1000,
      });
      await store.insert(record);
      expect(await indexesOf(raw, record)).toEqual({ due: 1000, undelivered: record.createdAt });

      const at = Date.now();
      const { record: dead } = await applyDeliveryEvent(
        store,
        record.id,
        { type: 'deadline' },
        policy,
        () => at,
      );
      expect(dead.state).toBe('dead-lettered');
      expect(dead.reason).toMatch(/no delivery ack after 4 deliveries/);

      const [latest] = await store.listDeadLetters(1);
      expect(latest).toEqual({ id: record.id, reason: dead.reason, at });
      expect(await indexesOf(raw, record)).toEqual({ due: null, undelivered: null });
      expect(await store.get(record.id)).toStrictEqual(dead);
    });

    it('an observer never sees a command gone from the pending set without its dead-letter entry', async () => {
      const gatewayId = uniqueId('gw');
      const records = Array.from({ length: 100 }, () =>
        makeRecord({ gatewayId, state: 'dispatched', redeliveries: policy.maxRedeliveries, deadline: 1000 }),
      );
      for (const record of records) await store.insert(record);

      let done = false;
      let snapshots = 0;
      const observer = (async () => {
        const undeliveredKey = `${keyPrefix}gw:${gatewayId}:undelivered`;
        while (!done) {
          const replies = await raw
            .multi()
            .zrange(undeliveredKey, 0, -1)
            .xrange(`${keyPrefix}dead-letters`, '-', '+')
            .exec();
          const pending = new Set(replies![0]![1] as string[]);
          const lettered = new Set((replies![1]![1] as [string, string[]][]).map(([, fields]) => fields[1]));
          for (const record of records) {
            expect(pending.has(record.id) || lettered.has(record.id), record.id).toBe(true);
          }
          snapshots++;
        }
      })();
      await Promise.all(records.map((r) => applyDeliveryEvent(store, r.id, { type: 'deadline' }, policy)));
      done = true;
      await observer;
      expect(snapshots).toBeGreaterThan(0);
      expect(await store.listUndelivered(gatewayId)).toEqual([]);
    });

    it('listDeadLetters returns the newest first and honours the limit', async () => {
      const records = [1, 2, 3].map(() =>
        makeRecord({ state: 'dispatched', redeliveries: policy.maxRedeliveries, deadline: 1000 }),
      );
      for (const record of records) {
        await store.insert(record);
        await applyDeliveryEvent(store, record.id, { type: 'deadline' }, policy);
      }
      expect((await store.listDeadLetters(2)).map((letter) => letter.id)).toEqual([
        records[2]!.id,
        records[1]!.id,
      ]);
      expect(await store.listDeadLetters(0)).toEqual([]);
    });
  });

  describe('the due and undelivered indexes follow the record through its whole lifecycle', () => {
    let store: RedisCommandStore;
    beforeAll(() => {
      store = createRedisCommandStore({ url: redisUrl, keyPrefix });
    });
    afterAll(async () => {
      await store?.close();
    });

    it('pending → dispatched → (ack timeout) pending → dispatched → acknowledged → running → completed', async () => {
      const record = makeRecord();
      await store.insert(record);
      let clock = record.createdAt;
      const now = () => clock;
      const step = async (event: Parameters<typeof applyDeliveryEvent>[2]) => {
        const { record: next, changed } = await applyDeliveryEvent(store, record.id, event, policy, now);
        expect(changed).toBe(true);
        return next;
      };

      expect(await indexesOf(raw, record)).toEqual({ due: record.deadline, undelivered: record.createdAt });
      clock += 10;
      let next = await step({ type: 'dispatch' });
      expect(await indexesOf(raw, record)).toEqual({
        due: clock + policy.ackTimeoutMs,
        undelivered: record.createdAt,
      });
      clock += policy.ackTimeoutMs;
      next = await step({ type: 'deadline' });
      expect(next).toMatchObject({ state: 'pending', redeliveries: 1 });
      expect(await indexesOf(raw, record)).toEqual({
        due: clock + policy.queueTimeoutMs,
        undelivered: record.createdAt,
      });
      clock += 10;
      await step({ type: 'dispatch' });
      clock += 10;
      await step({ type: 'ack' });
      expect(await indexesOf(raw, record)).toEqual({
        due: clock + policy.completionTimeoutMs,
        undelivered: null,
      });
      clock += 10;
      await step({ type: 'progress', progress: { rows: 1, bytes: 10, stage: 'querying' } });
      expect(await indexesOf(raw, record)).toEqual({
        due: clock + policy.completionTimeoutMs,
        undelivered: null,
      });
      clock += 10;
      next = await step({ type: 'complete', result: { kind: 'rows', rowCount: 1, columns: [] } as never });
      expect(await indexesOf(raw, record)).toEqual({ due: null, undelivered: null });
      expect(await store.get(record.id)).toStrictEqual(next);
      expect(next.version).toBe(record.version + 6);
    });

    it('a pending command whose gateway never connects expires and leaves both sets', async () => {
      const record = makeRecord();
      await store.insert(record);
      const { record: expired } = await applyDeliveryEvent(
        store,
        record.id,
        { type: 'deadline' },
        policy,
        () => record.deadline!,
      );
      expect(expired.state).toBe('expired');
      expect(await indexesOf(raw, record)).toEqual({ due: null, undelivered: null });
    });

    it('a failed command leaves both sets', async () => {
      const record = makeRecord({ state: 'dispatched' });
      await store.insert(record);
      await applyDeliveryEvent(
        store,
        record.id,
        {
          type: 'fail',
          error: { code: 'query-failed', message: 'syntax error' },
        },
        policy,
      );
      expect(await indexesOf(raw, record)).toEqual({ due: null, undelivered: null });
    });

    it('a refused insert (existing id) is an invalid-state error and touches no index', async () => {
      const record = makeRecord();
      await store.insert(record);
      const error = await store
        .insert({ ...record, state: 'acknowledged', deadline: 5 })
        .catch((e: unknown) => e);
      expect(BackhaulError.isInstance(error) && error.code).toBe('invalid-state');
      expect(await indexesOf(raw, record)).toEqual({ due: record.deadline, undelivered: record.createdAt });
    });
  });

  describe('a write that moves a record to another gateway leaves the old gateway set', () => {
    it('also when the connection has its own ioredis keyPrefix', async () => {
      // The store's keys then live under `${keyPrefix}outer:`, which the script must use for a
      // key it builds itself.
      const redis = new Redis(redisUrl, { keyPrefix: `${keyPrefix}outer:` });
      const store = createRedisCommandStore({ redis, keyPrefix: '' });
      try {
        const record = makeRecord();
        await store.insert(record);
        const moved = { ...record, gatewayId: uniqueId('gw'), version: 2 };
        expect(await store.compareAndSet(moved)).toBe(true);
        expect(await store.listUndelivered(record.gatewayId)).toEqual([]);
        expect(await raw.zcard(`${keyPrefix}outer:gw:${record.gatewayId}:undelivered`)).toBe(0);
        expect((await store.listUndelivered(moved.gatewayId)).map((r) => r.id)).toEqual([record.id]);
      } finally {
        await store.close();
        await redis.quit();
      }
    });
  });

  describe('waitForReplicas makes a write fail unless enough replicas acknowledged it', () => {
    it('rejects with a retryable service-unavailable when the replicas are missing', async () => {
      // This Redis has no replicas, so WAIT times out with 0.
      const store = createRedisCommandStore({
        url: redisUrl,
        keyPrefix,
        waitForReplicas: { replicas: 1, timeoutMs: 20 },
      });
      try {
        const error = await store.insert(makeRecord()).catch((e: unknown) => e);
        expect(BackhaulError.isInstance(error) && [error.code, error.retryable]).toEqual([
          'service-unavailable',
          true,
        ]);
      } finally {
        await store.close();
      }
    });

    it('refuses a configuration that would block forever or wait for nothing', () => {
      expect(() => createRedisCommandStore({ waitForReplicas: { replicas: 1, timeoutMs: 0 } })).toThrow(
        RangeError,
      );
      expect(() => createRedisCommandStore({ waitForReplicas: { replicas: 0, timeoutMs: 100 } })).toThrow(
        RangeError,
      );
    });
  });

  describe('close() quits only a connection the store opened', () => {
    it('leaves a borrowed connection open, quits its own, and may be called twice', async () => {
      const borrowed = new Redis(redisUrl);
      try {
        const store = createRedisCommandStore({ redis: borrowed, keyPrefix });
        await store.get('anything');
        await store.close();
        expect(await borrowed.ping()).toBe('PONG');
      } finally {
        await borrowed.quit();
      }
      const own = createRedisCommandStore({ url: redisUrl, keyPrefix });
      await own.get('anything');
      await own.close();
      await own.close();
      expect(own.redis.status).toBe('end');
    });
  });

  describe('a Redis failure reaches the caller as a typed, retryable error', () => {
    it('get on an unreachable Redis rejects with service-unavailable', async () => {
      const redis = new Redis('redis://127.0.0.1:1', {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      redis.on('error', () => {});
      const store = createRedisCommandStore({ redis });
      const error = await store.get('x').catch((e: unknown) => e);
      expect(BackhaulError.isInstance(error) && [error.code, error.retryable]).toEqual([
        'service-unavailable',
        true,
      ]);
      redis.disconnect();
    });

    it('close() of a store whose Redis never answered resolves at once', async () => {
      const store = createRedisCommandStore({ url: 'redis://127.0.0.1:1' });
      store.redis.on('error', () => {});
      await expect(store.close()).resolves.toBeUndefined();
    });
  });
});
