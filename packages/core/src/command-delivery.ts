import type { CommandRecord, CommandStore, StoredResult } from './command-store.js';
import { BackhaulError } from './errors.js';
import type { CommandState, Failure, Progress } from './protocol.js';
import { terminalStates } from './protocol.js';

/**
 * The command delivery state machine (docs/protocol.md §7):
 *
 *   [queued →] pending → dispatched → acknowledged → running → completed | failed | expired
 *
 * and from any state before the end, `cancelled` when the caller cancels (§3.8).
 *
 * A query that waits for an admission slot (docs/protocol.md §3.7) starts `queued`: the gateway
 * knows nothing of it, so it is neither sent nor answerable, and it expires at its deadline.
 *
 * A dispatched command not acked within `ackTimeoutMs` goes back to pending to be sent again,
 * at most `maxRedeliveries` times, then it is dead-lettered with a reason. Once acked, a separate
 * completion deadline runs; every progress message pushes it forward, so a long query is not
 * mistaken for a lost one and run twice.
 */
export interface DeliveryPolicy {
  ackTimeoutMs: number;
  maxRedeliveries: number;
  completionTimeoutMs: number;
  /** How long a command may wait for its gateway to connect, or queued for an admission slot, before it expires. */
  queueTimeoutMs: number;
}

export const defaultDeliveryPolicy: DeliveryPolicy = {
  ackTimeoutMs: 30_000,
  maxRedeliveries: 3,
  completionTimeoutMs: 300_000,
  queueTimeoutMs: 3_600_000,
};

export type DeliveryEvent =
  /** A queued query got its admission slot: it becomes pending, to be sent. */
  | { type: 'admit' }
  | { type: 'dispatch' }
  | { type: 'ack' }
  | { type: 'progress'; progress: Progress }
  /**
   * An `auto` query's first chunk arrived (§3.9): its result is a file now, whose first
   * `liveRows` rows are the row batches already sent live. Taken once; a repeat changes nothing.
   */
  | { type: 'switch-to-file'; liveRows: number }
  | { type: 'complete'; result: StoredResult }
  | { type: 'fail'; error: Failure }
  /** The caller cancelled the query (§3.8); from any state that has not ended. */
  | { type: 'cancel'; reason?: string }
  /** The timer found the record past its deadline. */
  | { type: 'deadline' };

/**
 * States in which the gateway's answers (progress, completion, failure) are taken. `pending` is
 * among them: a command goes back to pending when its ack was lost, yet the gateway may have it
 * and be answering. An answer proves delivery; refusing it would throw a finished result away.
 */
function answerable(state: CommandState): boolean {
  return state === 'pending' || state === 'dispatched' || state === 'acknowledged' || state === 'running';
}

export function isTerminal(state: CommandState): boolean {
  return terminalStates.includes(state);
}

export function newCommandRecord(
  command: CommandRecord['command'],
  gatewayId: string,
  policy: DeliveryPolicy,
  now: number,
  initialState: 'pending' | 'queued' = 'pending',
): CommandRecord {
  return {
    id: command.id,
    gatewayId,
    command,
    state: initialState,
    version: 1,
    createdAt: now,
    updatedAt: now,
    redeliveries: 0,
    deadline: now + policy.queueTimeoutMs,
  };
}

/**
 * Applies one event. Returns the next record, the same record when the event is a harmless
 * repeat (a duplicate ack or completion), or throws `invalid-state` when the event is not
 * allowed from the current state.
 */
export function transition(
  record: CommandRecord,
  event: DeliveryEvent,
  policy: DeliveryPolicy,
  now: number,
): CommandRecord {
  const next = (patch: Partial<CommandRecord>): CommandRecord => ({
    ...record,
    ...patch,
    version: record.version + 1,
    updatedAt: now,
  });
  const refuse = (): never => {
    throw new BackhaulError(
      'invalid-state',
      `Cannot ${event.type} command ${record.id} in state ${record.state}`,
      {
        details: { state: record.state },
      },
    );
  };
  const { state } = record;

  switch (event.type) {
    case 'admit':
      // The wait for a slot is over: the wait for the gateway starts afresh.
      if (state === 'queued') return next({ state: 'pending', deadline: now + policy.queueTimeoutMs });
      return refuse();

    case 'dispatch':
      if (state === 'pending') return next({ state: 'dispatched', deadline: now + policy.ackTimeoutMs });
      // A resend on reconnect of a command still waiting for its ack keeps its deadline.
      if (state === 'dispatched') return record;
      return refuse();

    case 'ack':
      // The gateway may ack a copy sent before a redelivery was queued: accept from pending too.
      if (state === 'pending' || state === 'dispatched') {
        return next({ state: 'acknowledged', deadline: now + policy.completionTimeoutMs });
      }
      if (state === 'acknowledged' || state === 'running' || isTerminal(state)) return record;
      return refuse();

    case 'progress':
      if (answerable(state)) {
        return next({
          state: 'running',
          progress: event.progress,
          deadline: now + policy.completionTimeoutMs,
        });
      }
      return refuse();

    case 'switch-to-file':
      if (answerable(state)) {
        if (record.liveRows !== undefined) return record;
        return next({
          state: 'running',
          liveRows: event.liveRows,
          deadline: now + policy.completionTimeoutMs,
        });
      }
      return refuse();

    case 'complete':
      if (answerable(state)) {
        return next({ state: 'completed', result: event.result, deadline: undefined });
      }
      if (state === 'completed') return record;
      return refuse();

    case 'fail':
      if (answerable(state)) {
        return next({ state: 'failed', error: event.error, deadline: undefined });
      }
      if (state === 'failed') return record;
      return refuse();

    case 'cancel':
      // Cancelling twice is one cancel; a query that ended otherwise keeps its outcome.
      if (state === 'cancelled') return record;
      if (isTerminal(state)) return refuse();
      return next({
        state: 'cancelled',
        deadline: undefined,
        reason: event.reason ?? 'cancelled by the caller',
      });

    case 'deadline':
      if (record.deadline === undefined || now < record.deadline) return record;
      if (state === 'dispatched') {
        if (record.redeliveries >= policy.maxRedeliveries) {
          return next({
            state: 'dead-lettered',
            deadline: undefined,
            reason: `no delivery ack after ${deliveries(record.redeliveries + 1)}, ${policy.ackTimeoutMs} ms each`,
          });
        }
        return next({
          state: 'pending',
          redeliveries: record.redeliveries + 1,
          deadline: now + policy.queueTimeoutMs,
        });
      }
      if (state === 'pending') {
        return next({ state: 'expired', deadline: undefined, reason: 'the gateway did not connect in time' });
      }
      if (state === 'queued') {
        return next({
          state: 'expired',
          deadline: undefined,
          reason: 'no admission slot became free in time',
        });
      }
      if (state === 'acknowledged' || state === 'running') {
        return next({
          state: 'expired',
          deadline: undefined,
          reason: `no progress or completion within ${policy.completionTimeoutMs} ms`,
        });
      }
      return record;
  }
}

/**
 * Loads, transitions and writes back with compare-and-set, retrying when another writer won
 * the race. Returns the record as stored after the event, and whether this call changed it.
 */
export async function applyDeliveryEvent(
  store: CommandStore,
  id: string,
  event: DeliveryEvent,
  policy: DeliveryPolicy,
  now: () => number = Date.now,
): Promise<{ record: CommandRecord; changed: boolean }> {
  for (let attempt = 0; attempt < 16; attempt++) {
    const current = await store.get(id);
    if (!current) throw new BackhaulError('not-found', `No command ${id}`);
    const next = transition(current, event, policy, now());
    if (next === current) return { record: current, changed: false };
    if (await store.compareAndSet(next)) return { record: next, changed: true };
  }
  throw new BackhaulError('service-unavailable', `Command ${id} is contended; try again`);
}

function deliveries(count: number): string {
  return count === 1 ? '1 delivery' : `${count} deliveries`;
}
