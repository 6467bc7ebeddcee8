import { randomUUID } from 'node:crypto';
import {
  applyDeliveryEvent,
  BackhaulError,
  type CommandRecord,
  type CommandStore,
  type DeliveryEvent,
  type DeliveryPolicy,
  newCommandRecord,
  PROTOCOL_VERSION,
  parseMessage,
  type SubmitQuery,
  submitQuerySchema,
} from '@backhaul/core';
import type { CommandStreams } from './command-stream.js';
import type { Logger } from './logger.js';

/**
 * Moves commands through the delivery state machine (docs/protocol.md §7) and onto the gateways'
 * streams. Every step is written to the store before anything is sent: a command the server
 * announced is always one it can find again after a crash (at-least-once starts with the write).
 */
export interface CommandDispatcher {
  submit(request: SubmitQuery): Promise<CommandRecord>;
  /** Applies one event with compare-and-set and tells the listeners when the record changed. */
  apply(id: string, event: DeliveryEvent): Promise<CommandRecord>;
  /** docs/protocol.md §4: on every (re)connection, every command not yet acked, oldest first. */
  sendUndelivered(gatewayId: string): Promise<void>;
  /** One pass of the deadline timer; exposed for tests. */
  sweep(): Promise<void>;
  start(): void;
  stop(): void;
}

export type RecordChangeListener = (record: CommandRecord, event: DeliveryEvent) => void;

export interface CommandDispatcherOptions {
  store: CommandStore;
  policy: DeliveryPolicy;
  streams: CommandStreams;
  hasGateway(id: string): boolean;
  rowsByteLimit: number;
  sweepIntervalMs: number;
  logger: Logger;
  onChange: RecordChangeListener;
}

/** Records handled per timer tick; the rest wait for the next tick rather than stall this one. */
const SWEEP_BATCH = 100;

export function createCommandDispatcher(options: CommandDispatcherOptions): CommandDispatcher {
  const { store, policy, streams, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;

  async function apply(id: string, event: DeliveryEvent): Promise<CommandRecord> {
    const { record, changed } = await applyDeliveryEvent(store, id, event, policy);
    if (changed) {
      try {
        options.onChange(record, event);
      } catch (error) {
        logger.error('a state change listener failed', { id, error: String(error) });
      }
    }
    return record;
  }

  /** Marks a pending command dispatched (starting its ack timer) and writes it to the stream. */
  async function dispatch(id: string): Promise<void> {
    let record = await store.get(id);
    if (!record || !streams.isConnected(record.gatewayId)) return;
    if (record.state === 'pending') record = await apply(id, { type: 'dispatch' });
    // Only a dispatched command goes out: one acked meanwhile needs nothing more.
    if (record.state === 'dispatched') streams.send(record);
  }

  async function sweep(): Promise<void> {
    const due = await store.listDue(Date.now(), SWEEP_BATCH);
    for (const candidate of due) {
      try {
        const record = await apply(candidate.id, { type: 'deadline' });
        // An ack timeout put it back to pending: resend now rather than wait for a reconnect.
        if (record.state === 'pending' && record.redeliveries > candidate.redeliveries)
          await dispatch(record.id);
        if (record.state === 'dead-lettered' || record.state === 'expired') {
          logger.warn('command gave up', { id: record.id, state: record.state, reason: record.reason });
        }
      } catch (error) {
        logger.error('deadline handling failed', { id: candidate.id, error: String(error) });
      }
    }
  }

  return {
    async submit(request) {
      const query = parseMessage(submitQuerySchema, request, 'query');
      if (!options.hasGateway(query.gatewayId)) {
        throw new BackhaulError('not-found', `No gateway '${query.gatewayId}' is configured`);
      }
      const now = Date.now();
      const command: CommandRecord['command'] = {
        v: PROTOCOL_VERSION,
        id: randomUUID(),
        type: 'query',
        sql: query.sql,
        params: query.params,
        mode: query.mode,
        ...(query.maxRows === undefined ? {} : { maxRows: query.maxRows }),
        ...(query.timeoutMs === undefined ? {} : { timeoutMs: query.timeoutMs }),
        rowsByteLimit: options.rowsByteLimit,
        issuedAt: now,
      };
      const record = newCommandRecord(command, query.gatewayId, policy, now);
      // Persist first, send second: a crash between the two leaves a pending command that the
      // next connection of the gateway picks up, never a command the store does not know.
      await store.insert(record);
      await dispatch(record.id);
      return (await store.get(record.id)) ?? record;
    },
    apply,
    async sendUndelivered(gatewayId) {
      for (const record of await store.listUndelivered(gatewayId)) {
        if (!streams.isConnected(gatewayId)) return;
        await dispatch(record.id);
      }
    },
    sweep() {
      // One pass at a time: a slow store must not stack sweeps on top of each other.
      sweeping ??= sweep()
        .catch((error) => logger.error('deadline sweep failed', { error: String(error) }))
        .finally(() => {
          sweeping = undefined;
        });
      return sweeping;
    },
    start() {
      if (timer) return;
      timer = setInterval(() => void this.sweep(), options.sweepIntervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
