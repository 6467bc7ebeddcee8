import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDeliveryEvent, defaultDeliveryPolicy, newCommandRecord } from '../command-delivery.js';
import type { CommandRecord, CommandStore, NewIdempotencyClaim, StoredResult } from '../command-store.js';
import { type CommandState, terminalStates } from '../protocol.js';

/**
 * The rules every `CommandStore` must follow. An adapter calls this once from its own tests:
 *
 *     runCommandStoreConformance('redis', async () => createRedisCommandStore({ url }));
 *
 * A store may be durable and shared with other runs (Redis, a database), so every test makes
 * its own command and gateway IDs and never assumes the store starts empty.
 */
export function runCommandStoreConformance(name: string, createStore: () => Promise<CommandStore>): void {
  describe(`CommandStore conformance: ${name}`, () => {
    let store: CommandStore;
    // Tests run in sequence inside a file, so one store for the suite is enough, and it is what
    // a durable store looks like in production: long-lived, full of other records.
    beforeAll(async () => {
      store = await createStore();
    });
    afterAll(async () => {
      await store?.close();
    });

    const run = randomUUID().slice(0, 8);
    let counter = 0;
    const uniqueId = (prefix: string) => `${prefix}-${run}-${++counter}`;

    const makeRecord = (
      patch: Partial<CommandRecord> & { gatewayId?: string } = {},
      createdAt = Date.now(),
    ): CommandRecord => {
      const id = patch.id ?? uniqueId('cmd');
      const record = newCommandRecord(
        {
          v: 1,
          id,
          type: 'query',
          sql: 'SELECT id, name FROM items WHERE id > ?',
          params: [42, 'text', true, null],
          mode: 'auto',
          maxRows: 1000,
          rowsByteLimit: 1_048_576,
          issuedAt: createdAt,
        },
        patch.gatewayId ?? uniqueId('gw'),
        defaultDeliveryPolicy,
        createdAt,
      );
      return { ...record, ...patch, id };
    };

    it('insert then get returns an equal record, and a copy: mutating it does not change the store', async () => {
      const record = makeRecord({ progress: { rows: 10, bytes: 2048, stage: 'querying' } });
      await store.insert(record);

      const loaded = await store.get(record.id);
      expect(loaded).toEqual(record);

      // Neither the object handed to insert nor the one returned by get is the stored state.
      record.state = 'failed';
      record.command.params.push('inserted-object-mutated');
      loaded!.state = 'completed';
      loaded!.command.params.push('returned-object-mutated');
      loaded!.progress!.rows = 999;

      const again = await store.get(record.id);
      expect(again?.state).toBe('pending');
      expect(again?.command.params).toEqual([42, 'text', true, null]);
      expect(again?.progress?.rows).toBe(10);
      expect(await store.get(uniqueId('missing'))).toBeUndefined();
    });

    it('inserting an existing id rejects and keeps the first record', async () => {
      const record = makeRecord();
      await store.insert(record);
      await expect(store.insert({ ...record, state: 'dispatched', version: 7 })).rejects.toThrow();
      const stored = await store.get(record.id);
      expect(stored?.state).toBe('pending');
      expect(stored?.version).toBe(1);
    });

    it('compareAndSet succeeds only when the stored version is next.version - 1', async () => {
      const record = makeRecord();
      await store.insert(record);

      // Same version (not +1) and a skipped version are both refused, and change nothing.
      expect(await store.compareAndSet({ ...record, state: 'dispatched' })).toBe(false);
      expect(await store.compareAndSet({ ...record, state: 'dispatched', version: 3 })).toBe(false);
      expect((await store.get(record.id))?.state).toBe('pending');

      expect(await store.compareAndSet({ ...record, state: 'dispatched', version: 2 })).toBe(true);
      const stored = await store.get(record.id);
      expect(stored?.state).toBe('dispatched');
      expect(stored?.version).toBe(2);

      // A stale writer still holding version 1 loses against the write that made version 2.
      expect(await store.compareAndSet({ ...record, state: 'failed', version: 2 })).toBe(false);
      expect((await store.get(record.id))?.state).toBe('dispatched');

      // A record that was never inserted cannot be set.
      expect(await store.compareAndSet({ ...makeRecord(), version: 2 })).toBe(false);
    });

    it('two concurrent compareAndSet from the same base: exactly one wins', async () => {
      const record = makeRecord();
      await store.insert(record);
      const writers: CommandState[] = ['acknowledged', 'failed', 'running', 'completed'];
      const outcomes = await Promise.all(
        writers.map((state) => store.compareAndSet({ ...record, state, version: record.version + 1 })),
      );
      expect(outcomes.filter(Boolean)).toHaveLength(1);
      const winner = writers[outcomes.indexOf(true)];
      const stored = await store.get(record.id);
      expect(stored?.state).toBe(winner);
      expect(stored?.version).toBe(2);
    });

    it('listUndelivered returns only pending and dispatched records of that gateway, oldest first (never queued)', async () => {
      const gatewayId = uniqueId('gw');
      const otherGatewayId = uniqueId('gw');
      const base = Date.now() - 60_000;
      // Inserted out of creation order, so an insertion-ordered store would fail the ordering.
      const dispatched = makeRecord({ gatewayId, state: 'dispatched' }, base + 2);
      const pendingOld = makeRecord({ gatewayId, state: 'pending' }, base + 1);
      const pendingNew = makeRecord({ gatewayId, state: 'pending' }, base + 3);
      const others: CommandRecord[] = (['queued', 'acknowledged', 'running', ...terminalStates] as const).map(
        (state, i) => makeRecord({ gatewayId, state }, base + 10 + i),
      );
      const foreign = makeRecord({ gatewayId: otherGatewayId, state: 'pending' }, base);
      for (const record of [pendingNew, dispatched, ...others, foreign, pendingOld])
        await store.insert(record);

      const undelivered = await store.listUndelivered(gatewayId);
      expect(undelivered.map((r) => r.id)).toEqual([pendingOld.id, dispatched.id, pendingNew.id]);
      expect(undelivered[1]).toEqual(dispatched);
      expect((await store.listUndelivered(otherGatewayId)).map((r) => r.id)).toEqual([foreign.id]);
      expect(await store.listUndelivered(uniqueId('gw'))).toEqual([]);

      // A record that moves on leaves the list.
      await store.compareAndSet({ ...pendingOld, state: 'acknowledged', version: pendingOld.version + 1 });
      expect((await store.listUndelivered(gatewayId)).map((r) => r.id)).toEqual([
        dispatched.id,
        pendingNew.id,
      ]);
    });

    it('listDue returns non-terminal records with deadline <= now, by deadline, honouring limit', async () => {
      // Deadlines far below any real clock reading, and lower on every later run, so records of
      // other tests (real deadlines) and of earlier runs on a durable store (higher deadlines)
      // are never due at this `now`.
      const now = -Date.now() * 100;
      const gatewayId = uniqueId('gw');
      const due = (deadline: number, state: CommandState = 'dispatched') =>
        makeRecord({ gatewayId, state, deadline }, Date.now());
      const third = due(now, 'acknowledged');
      const first = due(now - 30, 'pending');
      const second = due(now - 20, 'running');
      // A query queued for an admission slot expires at its deadline like any other.
      const queued = due(now - 10, 'queued');
      const terminal = terminalStates.map((state) => due(now - 25, state));
      const future = due(now + 1);
      const noDeadline = makeRecord({ gatewayId, state: 'completed', deadline: undefined });
      for (const record of [third, future, ...terminal, second, queued, noDeadline, first])
        await store.insert(record);

      expect((await store.listDue(now, 10)).map((r) => r.id)).toEqual([
        first.id,
        second.id,
        queued.id,
        third.id,
      ]);
      expect((await store.listDue(now, 2)).map((r) => r.id)).toEqual([first.id, second.id]);
      expect((await store.listDue(now - 21, 10)).map((r) => r.id)).toEqual([first.id]);
      expect(await store.listDue(now - 31, 10)).toEqual([]);
      const listed = await store.listDue(now, 1);
      expect(listed).toEqual([first]);

      // Once a record is terminal it is no longer due, whatever its deadline said before.
      await store.compareAndSet({
        ...first,
        state: 'expired',
        deadline: undefined,
        version: first.version + 1,
      });
      expect((await store.listDue(now, 10)).map((r) => r.id)).toEqual([second.id, queued.id, third.id]);

      // Leave nothing due behind on a durable store.
      for (const record of [second, queued, third, future]) {
        await store.compareAndSet({
          ...record,
          state: 'expired',
          deadline: undefined,
          version: record.version + 1,
        });
      }
      expect(await store.listDue(now + 1, 10)).toEqual([]);
    });

    it('a record driven through the whole state machine with applyDeliveryEvent ends completed with its result', async () => {
      const policy = defaultDeliveryPolicy;
      const record = makeRecord();
      await store.insert(record);
      let clock = record.createdAt;
      const now = () => clock;
      const result: StoredResult = {
        kind: 'file',
        format: 'parquet',
        size: 1_572_864,
        checksum: '0123456789abcdef',
        rowCount: 1000,
        chunkCount: 3,
        key: `results/${record.id}.parquet`,
      };

      clock += 5;
      const dispatched = await applyDeliveryEvent(store, record.id, { type: 'dispatch' }, policy, now);
      expect(dispatched.record.state).toBe('dispatched');
      expect(dispatched.record.deadline).toBe(clock + policy.ackTimeoutMs);
      clock += 5;
      expect((await applyDeliveryEvent(store, record.id, { type: 'ack' }, policy, now)).record.state).toBe(
        'acknowledged',
      );
      clock += 5;
      const progress = { rows: 500, bytes: 4096, stage: 'encoding' as const };
      const running = await applyDeliveryEvent(store, record.id, { type: 'progress', progress }, policy, now);
      expect(running.record.state).toBe('running');
      expect((await store.get(record.id))?.progress).toEqual(progress);
      clock += 5;
      const completed = await applyDeliveryEvent(store, record.id, { type: 'complete', result }, policy, now);
      expect(completed.changed).toBe(true);

      const stored = await store.get(record.id);
      expect(stored?.state).toBe('completed');
      expect(stored?.result).toEqual(result);
      expect(stored?.deadline).toBeUndefined();
      expect(stored?.version).toBe(5);
      expect(stored?.updatedAt).toBe(clock);
      expect(await store.listUndelivered(record.gatewayId)).toEqual([]);

      // A repeated completion (the gateway retried after a lost response) changes nothing.
      const repeat = await applyDeliveryEvent(store, record.id, { type: 'complete', result }, policy, now);
      expect(repeat.changed).toBe(false);
      expect((await store.get(record.id))?.version).toBe(5);
    });

    const newClaim = (callerId: string, key: string, patch: Partial<NewIdempotencyClaim> = {}) => ({
      callerId,
      key,
      fingerprint: `sha256-of-${key}`,
      expiresAt: Date.now() + 3_600_000,
      ...patch,
    });

    it('insertClaimed writes the record and its claim; a repeat of the key writes nothing and returns the first claim', async () => {
      const callerId = uniqueId('caller');
      const key = uniqueId('key');
      const first = makeRecord();
      const claim = newClaim(callerId, key);
      expect(await store.findClaim(callerId, key)).toBeUndefined();
      expect(await store.insertClaimed(first, claim)).toBeUndefined();
      expect(await store.get(first.id)).toEqual(first);
      expect(await store.findClaim(callerId, key)).toEqual({ ...claim, commandId: first.id });

      // The same key again, even with another body: the stored claim comes back, unchanged.
      const second = makeRecord();
      const repeat = await store.insertClaimed(second, { ...claim, fingerprint: 'another-body' });
      expect(repeat).toEqual({ ...claim, commandId: first.id });
      expect(await store.get(second.id)).toBeUndefined();
      expect(await store.listUndelivered(second.gatewayId)).toEqual([]);
      expect(await store.findClaim(callerId, key)).toEqual({ ...claim, commandId: first.id });
    });

    it('claims are per caller: the same key of two callers makes two commands', async () => {
      const key = uniqueId('key');
      const [alice, bob] = [uniqueId('caller'), uniqueId('caller')];
      const [a, b] = [makeRecord(), makeRecord()];
      expect(await store.insertClaimed(a, newClaim(alice, key))).toBeUndefined();
      expect(await store.insertClaimed(b, newClaim(bob, key))).toBeUndefined();
      expect((await store.findClaim(alice, key))?.commandId).toBe(a.id);
      expect((await store.findClaim(bob, key))?.commandId).toBe(b.id);
      // Keys that only look alike (a caller ID ending like another's key) do not collide either.
      expect(await store.findClaim(`${alice}:${key}`, key)).toBeUndefined();
      expect(await store.findClaim(alice, `${key} `)).toBeUndefined();
    });

    it('ten concurrent insertClaimed with one key: exactly one record is written, all see its claim', async () => {
      const callerId = uniqueId('caller');
      const key = uniqueId('key');
      const gatewayId = uniqueId('gw');
      const records = Array.from({ length: 10 }, () => makeRecord({ gatewayId }));
      const outcomes = await Promise.all(records.map((r) => store.insertClaimed(r, newClaim(callerId, key))));
      const winners = outcomes.flatMap((outcome, i) => (outcome === undefined ? [records[i]!] : []));
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      for (const outcome of outcomes) if (outcome) expect(outcome.commandId).toBe(winner.id);
      expect((await store.listUndelivered(gatewayId)).map((r) => r.id)).toEqual([winner.id]);
      for (const record of records) {
        expect(await store.get(record.id)).toEqual(record === winner ? winner : undefined);
      }
    });

    it('insertClaimed with an existing record ID rejects and leaves the key unclaimed', async () => {
      const callerId = uniqueId('caller');
      const key = uniqueId('key');
      const record = makeRecord();
      await store.insert(record);
      await expect(store.insertClaimed({ ...record, version: 7 }, newClaim(callerId, key))).rejects.toThrow();
      expect((await store.get(record.id))?.version).toBe(1);
      expect(await store.findClaim(callerId, key)).toBeUndefined();
    });

    it('a claim is forgotten once it expires, and the key then makes a new command', async () => {
      const callerId = uniqueId('caller');
      const key = uniqueId('key');
      const first = makeRecord();
      expect(
        await store.insertClaimed(first, newClaim(callerId, key, { expiresAt: Date.now() + 100 })),
      ).toBeUndefined();
      // Polled with a generous deadline rather than timed: a loaded machine may look late.
      const deadline = Date.now() + 10_000;
      while ((await store.findClaim(callerId, key)) !== undefined) {
        if (Date.now() > deadline) throw new Error('the claim did not expire within 10 s');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const second = makeRecord();
      expect(await store.insertClaimed(second, newClaim(callerId, key))).toBeUndefined();
      expect((await store.findClaim(callerId, key))?.commandId).toBe(second.id);
      // The record outlives its key: only the key is forgotten.
      expect((await store.get(first.id))?.id).toBe(first.id);
    });

    it('listDeadLetters and listFailures, where a store has them, list what entered those states, newest first', async () => {
      const gatewayId = uniqueId('gw');
      const start = Date.now();
      /** Inserts a record in `from`, then moves it to `to` with compareAndSet, as the dispatcher does. */
      const ended = async (from: CommandState, to: Partial<CommandRecord>, at: number) => {
        const record = makeRecord(
          { gatewayId, state: from, deadline: at + 60_000, callerId: 'caller-a' },
          at,
        );
        await store.insert(record);
        const next = { ...record, ...to, version: record.version + 1, updatedAt: at, deadline: undefined };
        expect(await store.compareAndSet(next)).toBe(true);
        return next;
      };
      const dead = await ended('dispatched', { state: 'dead-lettered', reason: 'no delivery ack' }, start);
      const failed = await ended(
        'running',
        { state: 'failed', error: { code: 'query-failed', message: 'division by zero' } },
        start + 1,
      );
      const expired = await ended('acknowledged', { state: 'expired', reason: 'no progress' }, start + 2);
      const completed = await ended(
        'running',
        { state: 'completed', result: { kind: 'rows', rowCount: 1, batchCount: 1 } },
        start + 3,
      );
      const mine = new Set([dead.id, failed.id, expired.id, completed.id]);

      if (store.listDeadLetters) {
        const letters = (await store.listDeadLetters(1000)).filter((letter) => mine.has(letter.id));
        expect(letters).toEqual([{ id: dead.id, reason: 'no delivery ack', at: start }]);
      }
      if (store.listFailures) {
        const failures = (await store.listFailures(1000)).filter((failure) => mine.has(failure.id));
        expect(failures).toEqual([
          {
            id: expired.id,
            gatewayId,
            callerId: 'caller-a',
            state: 'expired',
            code: 'expired',
            message: 'no progress',
            at: start + 2,
          },
          {
            id: failed.id,
            gatewayId,
            callerId: 'caller-a',
            state: 'failed',
            code: 'query-failed',
            message: 'division by zero',
            at: start + 1,
          },
        ]);
        expect(await store.listFailures(0)).toEqual([]);
      }
    });

    it('close() resolves', async () => {
      const own = await createStore();
      await expect(own.close()).resolves.toBeUndefined();
    });
  });
}
