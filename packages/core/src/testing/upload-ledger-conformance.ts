import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChunkEntry, ChunkRules, UploadLedger } from '../upload-ledger.js';

/**
 * The rules every `UploadLedger` must follow. An adapter calls this once from its own tests:
 *
 *     runUploadLedgerConformance('redis', async () => createRedisUploadLedger({ url, keyPrefix }));
 *
 * It assumes a durable ledger shared with other runs: every test uses upload IDs of its own.
 */
export function runUploadLedgerConformance(name: string, createLedger: () => Promise<UploadLedger>): void {
  describe(`UploadLedger conformance: ${name}`, () => {
    let ledger: UploadLedger;
    beforeAll(async () => {
      ledger = await createLedger();
    });
    afterAll(async () => {
      await ledger?.close();
    });

    const run = randomUUID().slice(0, 8);
    let counter = 0;
    const uploadId = () => `upload-${run}-${++counter}`;
    const rules: ChunkRules = { chunkSize: 100, chunkWindow: 4 };
    const checksumOf = (index: number, variant = 0) => (index * 31 + variant).toString(16).padStart(16, '0');
    const chunk = (index: number, size = rules.chunkSize, variant = 0): ChunkEntry => ({
      index,
      checksum: checksumOf(index, variant),
      size,
    });
    const indices = (chunks: Map<number, ChunkEntry>) => [...chunks.keys()].sort((a, b) => a - b);

    it('an upload never seen is open with no chunks', async () => {
      expect(await ledger.read(uploadId())).toEqual({ status: 'open', contiguous: 0, chunks: new Map() });
    });

    it('records chunks in any order and counts the contiguous prefix', async () => {
      const id = uploadId();
      expect(await ledger.recordChunk(id, chunk(2), rules)).toEqual({ kind: 'recorded' });
      expect(await ledger.recordChunk(id, chunk(0), rules)).toEqual({ kind: 'recorded' });
      let record = await ledger.read(id);
      expect(record.contiguous).toBe(1);
      expect(indices(record.chunks)).toEqual([0, 2]);
      expect(record.chunks.get(2)).toEqual(chunk(2));

      expect(await ledger.recordChunk(id, chunk(1), rules)).toEqual({ kind: 'recorded' });
      record = await ledger.read(id);
      expect(record.status).toBe('open');
      expect(record.contiguous).toBe(3);
      expect(indices(record.chunks)).toEqual([0, 1, 2]);
    });

    it('the same chunk again is a duplicate; another checksum for its index is a conflict', async () => {
      const id = uploadId();
      await ledger.recordChunk(id, chunk(0), rules);
      expect(await ledger.recordChunk(id, chunk(0), rules)).toEqual({ kind: 'duplicate' });
      expect(await ledger.recordChunk(id, chunk(0, rules.chunkSize, 1), rules)).toEqual({
        kind: 'conflict',
        stored: checksumOf(0),
      });
      expect((await ledger.read(id)).chunks.get(0)).toEqual(chunk(0));
    });

    it('refuses an index chunkWindow or more past the first missing chunk, until the gap fills', async () => {
      const id = uploadId();
      await ledger.recordChunk(id, chunk(0), rules);
      expect(await ledger.recordChunk(id, chunk(5), rules)).toEqual({ kind: 'out-of-window', contiguous: 1 });
      expect(await ledger.recordChunk(id, chunk(4), rules)).toEqual({ kind: 'recorded' });
      await ledger.recordChunk(id, chunk(1), rules);
      expect(await ledger.recordChunk(id, chunk(5), rules)).toEqual({ kind: 'recorded' });
      expect(indices((await ledger.read(id)).chunks)).toEqual([0, 1, 4, 5]);
    });

    it('only the last chunk may be short', async () => {
      const id = uploadId();
      await ledger.recordChunk(id, chunk(0), rules);
      await ledger.recordChunk(id, chunk(2), rules);
      expect(await ledger.recordChunk(id, chunk(1, 10), rules)).toEqual({
        kind: 'misplaced-short',
        reason: 'short-not-last',
        other: 2,
      });
      expect(await ledger.recordChunk(id, chunk(3, 10), rules)).toEqual({ kind: 'recorded' });
      expect(await ledger.recordChunk(id, chunk(1, 20), rules)).toEqual({
        kind: 'misplaced-short',
        reason: 'second-short',
        other: 3,
      });
      expect(await ledger.recordChunk(id, chunk(4), rules)).toEqual({
        kind: 'misplaced-short',
        reason: 'after-short',
        other: 3,
      });
      expect(indices((await ledger.read(id)).chunks)).toEqual([0, 2, 3]);
    });

    it('of concurrent writers of one index with different checksums, exactly one records it', async () => {
      const id = uploadId();
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, variant) => ledger.recordChunk(id, chunk(0, 100, variant), rules)),
      );
      const recorded = outcomes.filter((outcome) => outcome.kind === 'recorded');
      expect(recorded).toHaveLength(1);
      const stored = (await ledger.read(id)).chunks.get(0)?.checksum;
      for (const outcome of outcomes) {
        if (outcome.kind !== 'recorded') expect(outcome).toEqual({ kind: 'conflict', stored });
      }
    });

    it('a claimed upload refuses chunks and other claimants until completed, then answers its result', async () => {
      const id = uploadId();
      await ledger.recordChunk(id, chunk(0, 10), rules);
      expect(await ledger.claimCompletion(id, 'a', 60_000)).toEqual({ kind: 'claimed' });
      expect(await ledger.claimCompletion(id, 'a', 60_000)).toEqual({ kind: 'claimed' });
      const busy = await ledger.claimCompletion(id, 'b', 60_000);
      expect(busy.kind).toBe('busy');
      if (busy.kind === 'busy') expect(busy.retryAfterMs).toBeGreaterThan(0);
      expect(await ledger.recordChunk(id, chunk(1), rules)).toEqual({ kind: 'closed', status: 'assembling' });
      expect((await ledger.read(id)).status).toBe('assembling');

      expect(await ledger.complete(id, 'b', '{"other":true}')).toBe(false);
      expect(await ledger.renewClaim(id, 'b', 60_000)).toBe(false);
      expect(await ledger.renewClaim(id, 'a', 60_000)).toBe(true);
      expect(await ledger.complete(id, 'a', '{"key":"x"}')).toBe(true);
      expect(await ledger.claimCompletion(id, 'b', 60_000)).toEqual({
        kind: 'completed',
        result: '{"key":"x"}',
      });
      const record = await ledger.read(id);
      expect(record.status).toBe('completed');
      expect(record.result).toBe('{"key":"x"}');
      expect(await ledger.recordChunk(id, chunk(0, 10), rules)).toEqual({
        kind: 'closed',
        status: 'completed',
      });
      expect(await ledger.complete(id, 'a', '{"again":true}')).toBe(false);
    });

    it('of concurrent claimants, exactly one gets the claim', async () => {
      const id = uploadId();
      const claims = await Promise.all(
        ['a', 'b', 'c', 'd'].map((owner) => ledger.claimCompletion(id, owner, 60_000)),
      );
      expect(claims.filter((claim) => claim.kind === 'claimed')).toHaveLength(1);
      expect(claims.filter((claim) => claim.kind === 'busy')).toHaveLength(3);
    });

    it('a claim whose lease ran out goes to the next claimant, and the old holder can no longer complete', async () => {
      const id = uploadId();
      expect(await ledger.claimCompletion(id, 'dead', 50)).toEqual({ kind: 'claimed' });
      const first = await ledger.claimCompletion(id, 'next', 60_000);
      let taken = first.kind === 'claimed';
      // Polls: the lease ends on the ledger's clock, however loaded this machine is.
      while (!taken) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const claim = await ledger.claimCompletion(id, 'next', 60_000);
        expect(claim.kind === 'claimed' || claim.kind === 'busy').toBe(true);
        taken = claim.kind === 'claimed';
      }
      expect(await ledger.renewClaim(id, 'dead', 60_000)).toBe(false);
      expect(await ledger.complete(id, 'dead', '{}')).toBe(false);
      expect(await ledger.complete(id, 'next', '{"by":"next"}')).toBe(true);
    });

    it('a released claim opens the upload again', async () => {
      const id = uploadId();
      await ledger.claimCompletion(id, 'a', 60_000);
      await ledger.releaseClaim(id, 'b'); // not the holder: changes nothing
      expect((await ledger.read(id)).status).toBe('assembling');
      await ledger.releaseClaim(id, 'a');
      expect((await ledger.read(id)).status).toBe('open');
      expect(await ledger.recordChunk(id, chunk(0), rules)).toEqual({ kind: 'recorded' });
      expect(await ledger.claimCompletion(id, 'b', 60_000)).toEqual({ kind: 'claimed' });
    });

    it('abort ends an upload, returns its chunks, and refuses chunks and claims from then on', async () => {
      const id = uploadId();
      await ledger.recordChunk(id, chunk(0), rules);
      await ledger.recordChunk(id, chunk(1), rules);
      const aborted = await ledger.abort(id);
      expect(aborted.status).toBe('aborted');
      expect(indices(aborted.chunks)).toEqual([0, 1]);
      expect((await ledger.abort(id)).status).toBe('aborted');
      expect(await ledger.recordChunk(id, chunk(2), rules)).toEqual({ kind: 'closed', status: 'aborted' });
      expect(await ledger.claimCompletion(id, 'a', 60_000)).toEqual({ kind: 'aborted' });
    });

    it('abort of an upload being assembled wins over its holder; abort of a completed one changes nothing', async () => {
      const assembling = uploadId();
      await ledger.claimCompletion(assembling, 'a', 60_000);
      await ledger.abort(assembling);
      expect(await ledger.complete(assembling, 'a', '{}')).toBe(false);
      expect((await ledger.read(assembling)).status).toBe('aborted');

      const completed = uploadId();
      await ledger.claimCompletion(completed, 'a', 60_000);
      await ledger.complete(completed, 'a', '{"done":1}');
      expect((await ledger.abort(completed)).status).toBe('completed');
      expect(await ledger.claimCompletion(completed, 'b', 60_000)).toEqual({
        kind: 'completed',
        result: '{"done":1}',
      });
    });

    it('uploads are independent', async () => {
      const one = uploadId();
      const two = uploadId();
      await ledger.recordChunk(one, chunk(0), rules);
      await ledger.claimCompletion(one, 'a', 60_000);
      expect(await ledger.recordChunk(two, chunk(0, 100, 1), rules)).toEqual({ kind: 'recorded' });
      expect((await ledger.read(two)).status).toBe('open');
    });
  });
}
