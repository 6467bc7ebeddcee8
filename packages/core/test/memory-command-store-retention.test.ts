import {
  applyDeliveryEvent,
  createMemoryCommandStore,
  defaultDeliveryPolicy,
  newCommandRecord,
} from '@backhaul/core';
import { expect, it } from 'vitest';

/**
 * The memory store forgets terminal records past its retention and claims past their expiry as
 * later writes come in: a long-running process holds a flat number of entries, not every command
 * it ever ran.
 */

const policy = defaultDeliveryPolicy;
let counter = 0;
const makeRecord = () => {
  const id = `cmd-${++counter}`;
  const now = Date.now();
  return newCommandRecord(
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
    'gw',
    policy,
    now,
  );
};

it('keeps a finished record for its retention, and the entry count stays flat over many commands', async () => {
  const kept = createMemoryCommandStore({ retentionMs: 3_600_000 });
  const record = makeRecord();
  await kept.insert(record);
  await applyDeliveryEvent(
    kept,
    record.id,
    { type: 'fail', error: { code: 'query-failed', message: 'no' } },
    policy,
  );
  await kept.insert(makeRecord());
  expect((await kept.get(record.id))?.state).toBe('failed');

  // A retention of 1 ms: what ended is forgotten by the next write after it.
  const store = createMemoryCommandStore({ retentionMs: 1 });
  const sizes: { records: number; claims: number }[] = [];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 200; i++) {
      const next = makeRecord();
      await store.insertClaimed(next, {
        callerId: 'c',
        key: `${round}-${i}`,
        fingerprint: 'f',
        expiresAt: Date.now() + 1,
      });
      await applyDeliveryEvent(
        store,
        next.id,
        { type: 'complete', result: { kind: 'rows', rowCount: 0, batchCount: 0 } },
        policy,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
    // One live command: its write prunes what ended before it.
    await store.insert(makeRecord());
    sizes.push(store.size());
  }
  // The live commands of each round (one each), and no claim: 600 ended, none kept.
  expect(sizes).toEqual([
    { records: 1, claims: 0 },
    { records: 2, claims: 0 },
    { records: 3, claims: 0 },
  ]);
  await store.close();
  await kept.close();
});
