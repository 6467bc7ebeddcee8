import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowBatch } from '../protocol.js';
import type { RowLog } from '../row-log.js';
import { expectBackhaulError } from './expect-backhaul-error.js';

const limits = { byteLength: 100, maxBytes: 1_000_000 };
const columns = [
  { name: 'id', type: 'int64' as const, nullable: false },
  { name: 'name', type: 'string' as const, nullable: true },
];
const batch = (seq: number, rows = 2): RowBatch => ({
  seq,
  ...(seq === 0 ? { columns } : {}),
  rows: Array.from({ length: rows }, (_, i) => [seq * 100 + i, `row ${seq}.${i} ☃`]),
});

/**
 * The rules every `RowLog` must follow. `createLog` is called twice: the two logs play two server
 * instances sharing one deployment (for the memory log, return the same one).
 *
 *     runRowLogConformance('redis', async () => createRedisRowLog({ url, keyPrefix }));
 *
 * Query IDs are unique per test, so a log shared with other runs is fine.
 */
export function runRowLogConformance(name: string, createLog: () => Promise<RowLog>): void {
  describe(`RowLog conformance: ${name}`, () => {
    let first: RowLog;
    let second: RowLog;
    beforeAll(async () => {
      first = await createLog();
      second = await createLog();
    });
    afterAll(async () => {
      await first?.close();
      if (second !== first) await second?.close();
    });

    const run = randomUUID().slice(0, 8);
    let counter = 0;
    const queryId = () => `query-${run}-${++counter}`;

    it('appends get positions 1, 2, 3 in arrival order, readable from another instance, after any position', async () => {
      const id = queryId();
      const sent = [batch(0), batch(2), batch(1)];
      const positions = [];
      for (const each of sent) positions.push(await first.append(id, each, limits));
      expect(positions).toEqual([
        { added: true, position: 1 },
        { added: true, position: 2 },
        { added: true, position: 3 },
      ]);
      expect(await second.read(id, 0)).toEqual(sent.map((each, i) => ({ position: i + 1, batch: each })));
      expect(await second.read(id, 1)).toEqual([
        { position: 2, batch: sent[1] },
        { position: 3, batch: sent[2] },
      ]);
      expect(await second.read(id, 3)).toEqual([]);
      expect(await second.read(id, 1, 1)).toEqual([{ position: 2, batch: sent[1] }]);
      expect(await second.read(queryId(), 0)).toEqual([]);
    });

    it('a seq already held is not appended again, from whichever instance it comes', async () => {
      const id = queryId();
      expect(await first.append(id, batch(0), limits)).toEqual({ added: true, position: 1 });
      expect(await second.append(id, batch(0), limits)).toEqual({ added: false });
      expect(await first.append(id, batch(0), limits)).toEqual({ added: false });
      expect(await second.append(id, batch(1), limits)).toEqual({ added: true, position: 2 });
      expect((await first.read(id, 0)).map((entry) => entry.batch.seq)).toEqual([0, 1]);
    });

    it('concurrent appends of one seq on two instances add it exactly once', async () => {
      const id = queryId();
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? first : second).append(id, batch(7), limits)),
      );
      expect(outcomes.filter((outcome) => outcome.added)).toHaveLength(1);
      expect(await first.read(id, 0)).toHaveLength(1);
    });

    it('summarises counts, bytes, the contiguous prefix and the columns of the first batch that had them', async () => {
      const id = queryId();
      expect(await first.summary(id)).toBeUndefined();
      await first.append(id, batch(1, 3), limits);
      expect(await second.summary(id)).toEqual({
        position: 1,
        batchCount: 1,
        rowCount: 3,
        bytes: 100,
        contiguousBatches: 0,
        columns: [],
      });
      await second.append(id, batch(0, 1), { ...limits, byteLength: 50 });
      await first.append(id, batch(3, 0), limits);
      expect(await first.summary(id)).toEqual({
        position: 3,
        batchCount: 3,
        rowCount: 4,
        bytes: 250,
        contiguousBatches: 2,
        columns,
      });
    });

    it('refuses a batch that would pass the byte bound, appending nothing', async () => {
      const id = queryId();
      await first.append(id, batch(0), { byteLength: 600, maxBytes: 1000 });
      await expectBackhaulError(
        second.append(id, batch(1), { byteLength: 401, maxBytes: 1000 }),
        'payload-too-large',
      );
      expect(await first.summary(id)).toMatchObject({ position: 1, batchCount: 1, bytes: 600 });
      expect(await second.append(id, batch(1), { byteLength: 400, maxBytes: 1000 })).toEqual({
        added: true,
        position: 2,
      });
    });

    it('an ended log is gone after its retention, on every instance', async () => {
      const id = queryId();
      await first.append(id, batch(0), limits);
      await second.end(id, 50);
      const start = Date.now();
      while ((await first.summary(id)) !== undefined) {
        if (Date.now() - start > 5000) throw new Error('the ended log was still there after 5 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await second.read(id, 0)).toEqual([]);
      // Ending a log that holds nothing is harmless.
      await expect(first.end(queryId(), 50)).resolves.toBeUndefined();
    });
  });
}
