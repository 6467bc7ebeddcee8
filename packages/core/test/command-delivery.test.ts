import {
  applyDeliveryEvent,
  BackhaulError,
  type CommandRecord,
  type CommandStore,
  createMemoryCommandStore,
  type DeliveryEvent,
  type DeliveryPolicy,
  defaultDeliveryPolicy,
  newCommandRecord,
  type StoredResult,
  transition,
} from '@backhaul/core';
import { describe, expect, it } from 'vitest';

const policy: DeliveryPolicy = {
  ackTimeoutMs: 30_000,
  maxRedeliveries: 3,
  completionTimeoutMs: 300_000,
  queueTimeoutMs: 3_600_000,
};
const t0 = 1_700_000_000_000;

function pending(id = 'cmd-1'): CommandRecord {
  return newCommandRecord(
    {
      v: 1,
      id,
      type: 'query',
      sql: 'SELECT 1',
      params: [],
      mode: 'rows',
      rowsByteLimit: 1_048_576,
      issuedAt: t0,
    },
    'gw-1',
    policy,
    t0,
  );
}

const rowsResult: StoredResult = { kind: 'rows', rowCount: 3, batchCount: 1 };

/** Applies events one after another, each 1 ms after the previous. */
function drive(record: CommandRecord, events: DeliveryEvent[], start = t0): CommandRecord {
  let current = record;
  events.forEach((event, i) => {
    current = transition(current, event, policy, start + i + 1);
  });
  return current;
}

function expectInvalidState(fn: () => unknown, state: string): void {
  try {
    fn();
  } catch (error) {
    expect(BackhaulError.isInstance(error)).toBe(true);
    expect((error as BackhaulError).code).toBe('invalid-state');
    expect((error as BackhaulError).status).toBe(409);
    expect((error as BackhaulError).details).toEqual({ state });
    return;
  }
  expect.fail(`expected invalid-state from ${state}`);
}

describe('§7 a new command is pending, with the queue deadline, at version 1', () => {
  it('starts pending', () => {
    const record = pending();
    expect(record).toMatchObject({
      id: 'cmd-1',
      gatewayId: 'gw-1',
      state: 'pending',
      version: 1,
      createdAt: t0,
      updatedAt: t0,
      redeliveries: 0,
      deadline: t0 + policy.queueTimeoutMs,
    });
  });

  it('the default policy is the design: 30 s ack, 3 redeliveries, 5 min completion', () => {
    expect(defaultDeliveryPolicy).toMatchObject({
      ackTimeoutMs: 30_000,
      maxRedeliveries: 3,
      completionTimeoutMs: 300_000,
    });
  });
});

describe('§7 pending → dispatched starts the ack deadline; every write bumps version and updatedAt', () => {
  it('dispatches', () => {
    const next = transition(pending(), { type: 'dispatch' }, policy, t0 + 10);
    expect(next).toMatchObject({
      state: 'dispatched',
      version: 2,
      updatedAt: t0 + 10,
      deadline: t0 + 10 + 30_000,
    });
  });

  it('does not mutate the record it was given', () => {
    const record = pending();
    const snapshot = structuredClone(record);
    transition(record, { type: 'dispatch' }, policy, t0 + 10);
    expect(record).toEqual(snapshot);
  });

  it('a resend of a dispatched command (reconnect) keeps its deadline and returns the same record', () => {
    const dispatched = transition(pending(), { type: 'dispatch' }, policy, t0 + 10);
    expect(transition(dispatched, { type: 'dispatch' }, policy, t0 + 20)).toBe(dispatched);
  });
});

describe('§5 ack moves to acknowledged and starts the completion deadline', () => {
  it('acks a dispatched command', () => {
    const dispatched = transition(pending(), { type: 'dispatch' }, policy, t0 + 10);
    const acked = transition(dispatched, { type: 'ack' }, policy, t0 + 50);
    expect(acked).toMatchObject({ state: 'acknowledged', version: 3, deadline: t0 + 50 + 300_000 });
  });

  it('acks a pending command (a copy sent before a redelivery was queued)', () => {
    expect(transition(pending(), { type: 'ack' }, policy, t0 + 5).state).toBe('acknowledged');
  });
});

describe('§5.2 progress moves to running and pushes the completion deadline forward', () => {
  it('extends the deadline on every progress message', () => {
    const acked = drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }]);
    const first = transition(acked, { type: 'progress', progress: { rows: 10 } }, policy, t0 + 200_000);
    expect(first).toMatchObject({
      state: 'running',
      progress: { rows: 10 },
      deadline: t0 + 200_000 + 300_000,
    });
    const second = transition(
      first,
      { type: 'progress', progress: { rows: 20, stage: 'uploading' } },
      policy,
      t0 + 450_000,
    );
    expect(second).toMatchObject({ state: 'running', progress: { rows: 20, stage: 'uploading' } });
    expect(second.deadline).toBe(t0 + 450_000 + 300_000);
    // Without the progress the first deadline would have expired the command at t0 + 500,002.
    expect(transition(second, { type: 'deadline' }, policy, t0 + 600_000)).toBe(second);
  });

  it('progress before the ack arrived (the ack was lost) also counts as delivered', () => {
    const dispatched = transition(pending(), { type: 'dispatch' }, policy, t0 + 1);
    expect(transition(dispatched, { type: 'progress', progress: {} }, policy, t0 + 2).state).toBe('running');
  });
});

describe('§5.5/§5.6 complete and fail end the command and clear the deadline', () => {
  it('completes from acknowledged and running, storing the result', () => {
    const acked = drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }]);
    const done = transition(acked, { type: 'complete', result: rowsResult }, policy, t0 + 100);
    expect(done).toMatchObject({ state: 'completed', result: rowsResult, deadline: undefined, version: 4 });
    const running = drive(pending(), [
      { type: 'dispatch' },
      { type: 'ack' },
      { type: 'progress', progress: {} },
    ]);
    expect(transition(running, { type: 'complete', result: rowsResult }, policy, t0 + 100).state).toBe(
      'completed',
    );
  });

  it('fails from acknowledged, running and dispatched, storing the error', () => {
    const error = { code: 'query-failed', message: 'syntax error at or near "SELEC"' };
    for (const events of [
      [{ type: 'dispatch' }],
      [{ type: 'dispatch' }, { type: 'ack' }],
      [{ type: 'dispatch' }, { type: 'ack' }, { type: 'progress', progress: {} }],
    ] satisfies DeliveryEvent[][]) {
      const failed = transition(drive(pending(), events), { type: 'fail', error }, policy, t0 + 100);
      expect(failed).toMatchObject({ state: 'failed', error, deadline: undefined });
    }
  });
});

describe('§5.1 duplicate ack and complete are no-ops returning the same record', () => {
  it('a second ack returns the same object, in every later state', () => {
    const acked = drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }]);
    expect(transition(acked, { type: 'ack' }, policy, t0 + 100)).toBe(acked);
    const running = transition(acked, { type: 'progress', progress: {} }, policy, t0 + 101);
    expect(transition(running, { type: 'ack' }, policy, t0 + 102)).toBe(running);
    const done = transition(running, { type: 'complete', result: rowsResult }, policy, t0 + 103);
    expect(transition(done, { type: 'ack' }, policy, t0 + 104)).toBe(done);
  });

  it('a second complete returns the same object and keeps the first result', () => {
    const done = drive(pending(), [
      { type: 'dispatch' },
      { type: 'ack' },
      { type: 'complete', result: rowsResult },
    ]);
    const again = transition(
      done,
      { type: 'complete', result: { kind: 'rows', rowCount: 99, batchCount: 9 } },
      policy,
      t0 + 50,
    );
    expect(again).toBe(done);
    expect(again.result).toEqual(rowsResult);
  });

  it('a second fail returns the same object', () => {
    const failed = drive(pending(), [
      { type: 'dispatch' },
      { type: 'fail', error: { code: 'x', message: 'y' } },
    ]);
    expect(transition(failed, { type: 'fail', error: { code: 'x', message: 'y' } }, policy, t0 + 50)).toBe(
      failed,
    );
  });
});

describe('§3.9 an auto query switching to a file records its live rows once', () => {
  it('moves to running, pushes the completion deadline and keeps liveRows; a repeat is the same record', () => {
    const acked = drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }]);
    const switched = transition(acked, { type: 'switch-to-file', liveRows: 300 }, policy, t0 + 50);
    expect(switched).toMatchObject({ state: 'running', liveRows: 300, version: acked.version + 1 });
    expect(switched.deadline).toBe(t0 + 50 + policy.completionTimeoutMs);
    // Concurrent first chunks each ask: the first count stands.
    expect(transition(switched, { type: 'switch-to-file', liveRows: 999 }, policy, t0 + 60)).toBe(switched);
  });
});

describe("§7 events not allowed from the current state throw 'invalid-state'", () => {
  const acked = () => drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }]);
  const completed = () =>
    drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }, { type: 'complete', result: rowsResult }]);
  const failed = () =>
    drive(pending(), [{ type: 'dispatch' }, { type: 'fail', error: { code: 'x', message: 'y' } }]);
  const expired = () => transition(pending(), { type: 'deadline' }, policy, t0 + policy.queueTimeoutMs);

  const cases: [string, () => CommandRecord, DeliveryEvent][] = [
    ['dispatch on acknowledged', acked, { type: 'dispatch' }],
    ['dispatch on completed', completed, { type: 'dispatch' }],
    ['progress on completed', completed, { type: 'progress', progress: {} }],
    ['fail on completed', completed, { type: 'fail', error: { code: 'x', message: 'y' } }],
    ['complete on failed', failed, { type: 'complete', result: rowsResult }],
    ['progress on failed', failed, { type: 'progress', progress: {} }],
    ['complete on expired', expired, { type: 'complete', result: rowsResult }],
    ['progress on expired', expired, { type: 'progress', progress: {} }],
    ['switch-to-file on completed', completed, { type: 'switch-to-file', liveRows: 0 }],
    ['switch-to-file on failed', failed, { type: 'switch-to-file', liveRows: 0 }],
  ];
  for (const [title, make, event] of cases) {
    it(title, () => {
      const record = make();
      expectInvalidState(() => transition(record, event, policy, t0 + 10_000_000), record.state);
    });
  }
});

describe('§5 a dispatched command not acked within 30 s is redelivered at most 3 times, then dead-lettered', () => {
  it('stays dispatched before the ack deadline and goes back to pending at it', () => {
    const dispatched = transition(pending(), { type: 'dispatch' }, policy, t0);
    expect(transition(dispatched, { type: 'deadline' }, policy, t0 + 29_999)).toBe(dispatched);
    const requeued = transition(dispatched, { type: 'deadline' }, policy, t0 + 30_000);
    expect(requeued).toMatchObject({ state: 'pending', redeliveries: 1, version: 3 });
  });

  it('with no redeliveries allowed, the reason says one delivery', () => {
    const once = { ...policy, maxRedeliveries: 0 };
    const dispatched = transition(pending(), { type: 'dispatch' }, once, t0);
    const dead = transition(dispatched, { type: 'deadline' }, once, t0 + once.ackTimeoutMs);
    expect(dead.state).toBe('dead-lettered');
    expect(dead.reason).toBe('no delivery ack after 1 delivery, 30000 ms each');
  });

  it('4 deliveries (1 + 3 redeliveries) then dead-lettered with a reason', () => {
    let record = pending();
    let now = t0;
    const deliveries: number[] = [];
    for (let i = 0; i < 10 && record.state !== 'dead-lettered'; i++) {
      record = transition(record, { type: 'dispatch' }, policy, ++now);
      expect(record.state).toBe('dispatched');
      deliveries.push(record.redeliveries + 1);
      now += policy.ackTimeoutMs;
      record = transition(record, { type: 'deadline' }, policy, now);
    }
    expect(deliveries).toEqual([1, 2, 3, 4]);
    expect(record.state).toBe('dead-lettered');
    expect(record.redeliveries).toBe(3);
    expect(record.deadline).toBeUndefined();
    expect(record.reason).toBe('no delivery ack after 4 deliveries, 30000 ms each');
    // Dead-lettered is terminal: a late deadline tick changes nothing, a late ack is a no-op.
    expect(transition(record, { type: 'deadline' }, policy, now + 1e9)).toBe(record);
    expect(transition(record, { type: 'ack' }, policy, now + 1)).toBe(record);
    expectInvalidState(() => transition(record, { type: 'dispatch' }, policy, now + 1), 'dead-lettered');
  });

  it('an ack after a redelivery was queued still counts', () => {
    const requeued = drive(pending(), [{ type: 'dispatch' }]);
    const back = transition(requeued, { type: 'deadline' }, policy, t0 + 1 + policy.ackTimeoutMs);
    expect(back.state).toBe('pending');
    expect(transition(back, { type: 'ack' }, policy, back.updatedAt + 1).state).toBe('acknowledged');
  });
});

describe('§7 other deadlines expire the command with a reason', () => {
  it('pending past the queue deadline: expired, the gateway did not connect', () => {
    const record = pending();
    expect(transition(record, { type: 'deadline' }, policy, t0 + policy.queueTimeoutMs - 1)).toBe(record);
    const expired = transition(record, { type: 'deadline' }, policy, t0 + policy.queueTimeoutMs);
    expect(expired).toMatchObject({
      state: 'expired',
      deadline: undefined,
      reason: 'the gateway did not connect in time',
    });
  });

  it('acknowledged or running past the completion deadline: expired', () => {
    const acked = drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }]);
    const expired = transition(acked, { type: 'deadline' }, policy, acked.deadline!);
    expect(expired).toMatchObject({ state: 'expired', reason: 'no progress or completion within 300000 ms' });
    const running = transition(acked, { type: 'progress', progress: {} }, policy, t0 + 10);
    expect(transition(running, { type: 'deadline' }, policy, running.deadline!).state).toBe('expired');
  });

  it('a terminal record ignores the deadline', () => {
    const done = drive(pending(), [
      { type: 'dispatch' },
      { type: 'ack' },
      { type: 'complete', result: rowsResult },
    ]);
    expect(transition(done, { type: 'deadline' }, policy, t0 + 1e10)).toBe(done);
  });
});

describe('applyDeliveryEvent writes with compare-and-set and retries when another writer wins', () => {
  /** A memory store whose first `racingWrites` compareAndSet calls lose to a competing write. */
  function racingStore(racingWrites: number, competing: (current: CommandRecord) => CommandRecord) {
    const inner = createMemoryCommandStore();
    const calls = { get: 0, compareAndSet: 0 };
    let races = racingWrites;
    const store: CommandStore = {
      ...inner,
      async get(id) {
        calls.get++;
        return inner.get(id);
      },
      async compareAndSet(next) {
        calls.compareAndSet++;
        if (races > 0) {
          races--;
          const current = (await inner.get(next.id))!;
          expect(await inner.compareAndSet(competing(current))).toBe(true);
        }
        return inner.compareAndSet(next);
      },
    };
    return { store, calls, inner };
  }

  it('reloads and applies the event on top of the winning write', async () => {
    const { store, calls } = racingStore(1, (current) => ({
      ...current,
      version: current.version + 1,
      progress: { rows: 7 },
      state: 'running',
    }));
    const acked = drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }]);
    await store.insert(acked);

    const { record, changed } = await applyDeliveryEvent(
      store,
      acked.id,
      { type: 'complete', result: rowsResult },
      policy,
      () => t0 + 99,
    );
    expect(changed).toBe(true);
    expect(calls).toEqual({ get: 2, compareAndSet: 2 });
    expect(record).toMatchObject({ state: 'completed', version: acked.version + 2, progress: { rows: 7 } });
    expect(await store.get(acked.id)).toEqual(record);
  });

  it('decides again after reloading: an ack that lost to another ack is a no-op', async () => {
    const { store, calls } = racingStore(1, (current) =>
      transition(current, { type: 'ack' }, policy, t0 + 50),
    );
    const dispatched = drive(pending(), [{ type: 'dispatch' }]);
    await store.insert(dispatched);

    const { record, changed } = await applyDeliveryEvent(
      store,
      dispatched.id,
      { type: 'ack' },
      policy,
      () => t0 + 60,
    );
    expect(changed).toBe(false);
    expect(calls).toEqual({ get: 2, compareAndSet: 1 });
    expect(record).toMatchObject({ state: 'acknowledged', version: 3, updatedAt: t0 + 50 });
  });

  it("gives up with a retryable 'service-unavailable' when it loses every time", async () => {
    const { store, calls } = racingStore(1_000, (current) => ({
      ...current,
      version: current.version + 1,
      progress: { rows: current.version },
    }));
    const acked = drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }]);
    await store.insert(acked);
    const error = await applyDeliveryEvent(
      store,
      acked.id,
      { type: 'progress', progress: {} },
      policy,
      () => t0,
    ).catch((e: unknown) => e);
    expect(BackhaulError.isInstance(error) && error.code).toBe('service-unavailable');
    expect(BackhaulError.isInstance(error) && error.retryable).toBe(true);
    expect(calls.compareAndSet).toBe(16);
  });

  it("a missing command is 'not-found'; an invalid event propagates 'invalid-state' and writes nothing", async () => {
    const store = createMemoryCommandStore();
    await expect(applyDeliveryEvent(store, 'nope', { type: 'ack' }, policy)).rejects.toMatchObject({
      code: 'not-found',
    });
    const record = transition(
      transition(pending(), { type: 'dispatch' }, policy, t0),
      { type: 'ack' },
      policy,
      t0,
    );
    await store.insert(record);
    await expect(applyDeliveryEvent(store, record.id, { type: 'dispatch' }, policy)).rejects.toMatchObject({
      code: 'invalid-state',
    });
    expect(await store.get(record.id)).toEqual(record);
  });
});

describe('§7 an answer to a command that went back to pending (its ack was lost) is taken, not thrown away', () => {
  const cases: [string, DeliveryEvent, CommandRecord['state']][] = [
    ['progress', { type: 'progress', progress: { rows: 5 } }, 'running'],
    ['complete', { type: 'complete', result: rowsResult }, 'completed'],
    ['fail', { type: 'fail', error: { code: 'query-failed', message: 'boom' } }, 'failed'],
  ];
  for (const [name, event, expected] of cases) {
    it(`${name} on pending moves it to ${expected}`, () => {
      const next = transition(pending(), event, policy, t0 + 10);
      expect(next.state).toBe(expected);
      expect(next.version).toBe(2);
    });
  }
});

describe('§3.7 a queued query waits for an admission slot before it can be sent', () => {
  const queued = () => ({ ...pending('cmd-q'), state: 'queued' as const });

  it('is admitted to pending with a fresh queue deadline, and only once', () => {
    const admitted = transition(queued(), { type: 'admit' }, policy, t0 + 5);
    expect(admitted).toMatchObject({
      state: 'pending',
      deadline: t0 + 5 + policy.queueTimeoutMs,
      version: 2,
    });
    expectInvalidState(() => transition(admitted, { type: 'admit' }, policy, t0 + 6), 'pending');
  });

  it('is neither sent nor answerable: the gateway has never seen it', () => {
    for (const event of [
      { type: 'dispatch' },
      { type: 'ack' },
      { type: 'progress', progress: { rows: 1 } },
      { type: 'complete', result: rowsResult },
      { type: 'fail', error: { code: 'query-failed', message: 'x' } },
    ] as DeliveryEvent[]) {
      expectInvalidState(() => transition(queued(), event, policy, t0 + 1), 'queued');
    }
  });

  it('expires at its deadline with a reason', () => {
    const record = queued();
    const expired = transition(record, { type: 'deadline' }, policy, (record.deadline as number) + 1);
    expect(expired).toMatchObject({
      state: 'expired',
      deadline: undefined,
      reason: 'no admission slot became free in time',
    });
  });
});

describe('§3.8 cancel ends any command that has not ended, once', () => {
  const queued = () => newCommandRecord({ ...pending().command }, 'gw-1', policy, t0, 'queued');
  const starts: [string, () => CommandRecord][] = [
    ['queued', queued],
    ['pending', pending],
    ['dispatched', () => drive(pending(), [{ type: 'dispatch' }])],
    ['acknowledged', () => drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }])],
    [
      'running',
      () =>
        drive(pending(), [
          { type: 'dispatch' },
          { type: 'ack' },
          { type: 'progress', progress: { rows: 5 } },
        ]),
    ],
  ];
  for (const [state, make] of starts) {
    it(`${state} → cancelled, with no deadline left and the reason kept`, () => {
      const record = make();
      expect(record.state).toBe(state);
      const cancelled = transition(record, { type: 'cancel' }, policy, t0 + 100);
      expect(cancelled.state).toBe('cancelled');
      expect(cancelled.deadline).toBeUndefined();
      expect(cancelled.reason).toBe('cancelled by the caller');
      expect(cancelled.version).toBe(record.version + 1);
    });
  }

  it('a second cancel returns the same record', () => {
    const cancelled = transition(pending(), { type: 'cancel' }, policy, t0 + 1);
    expect(transition(cancelled, { type: 'cancel' }, policy, t0 + 2)).toBe(cancelled);
  });

  it('a cancelled command refuses progress, completion and failure; a late ack changes nothing', () => {
    const cancelled = drive(pending(), [{ type: 'dispatch' }, { type: 'ack' }, { type: 'cancel' }]);
    for (const event of [
      { type: 'progress', progress: {} },
      { type: 'complete', result: rowsResult },
      { type: 'fail', error: { code: 'x', message: 'y' } },
    ] satisfies DeliveryEvent[]) {
      expectInvalidState(() => transition(cancelled, event, policy, t0 + 10), 'cancelled');
    }
    expect(transition(cancelled, { type: 'ack' }, policy, t0 + 10)).toBe(cancelled);
    expect(transition(cancelled, { type: 'deadline' }, policy, t0 + 10_000_000)).toBe(cancelled);
  });

  it('a command that ended otherwise cannot be cancelled: it keeps its outcome', () => {
    const completed = drive(pending(), [{ type: 'dispatch' }, { type: 'complete', result: rowsResult }]);
    expectInvalidState(() => transition(completed, { type: 'cancel' }, policy, t0 + 10), 'completed');
    const expired = transition(pending(), { type: 'deadline' }, policy, t0 + policy.queueTimeoutMs);
    expectInvalidState(
      () => transition(expired, { type: 'cancel' }, policy, t0 + policy.queueTimeoutMs + 1),
      'expired',
    );
  });
});
