import { randomUUID } from 'node:crypto';
import type { Logger } from '@backhaul/core';
import {
  applyDeliveryEvent,
  BackhaulError,
  type CommandRecord,
  type CommandStore,
  type DeliveryEvent,
  type DeliveryPolicy,
  formatTraceparent,
  type IdempotencyClaim,
  isTerminal,
  type NewIdempotencyClaim,
  newCommandRecord,
  newSpanId,
  newTraceId,
  PROTOCOL_VERSION,
  parseMessage,
  type SubmitQuery,
  startSpan,
  submitQuerySchema,
  type TraceContext,
} from '@backhaul/core';
import type { Admission, AdmissionScope, AdmissionTicket } from './admission.js';
import type { CommandStreams } from './command-stream.js';
import { commandAttributes, commandLogger, commandTrace, TRACER_NAME } from './command-trace.js';
import { failpoint } from './failpoints.js';
import { requestFingerprint } from './idempotency-key.js';

/**
 * Moves commands through the delivery state machine (docs/protocol.md §7) and onto the gateways'
 * streams. Every step is written to the store before anything is sent: a command the server
 * announced is always one it can find again after a crash (at-least-once starts with the write).
 */
export interface CommandDispatcher {
  /**
   * Admits (§3.7) and persists a query of `callerId`, then sends it. Over the limit it is 429
   * with nothing created, unless the caller asked to queue: then it is persisted `queued`.
   *
   * With an `idempotencyKey` (§3.1) the command is persisted together with the caller's claim on
   * the key; a repeat finds the claim and returns the command it names (`replayed`), taking no
   * admission slot and creating nothing, or `422 idempotency-key-reused` for another query.
   *
   * `trace` is the span that accepted the query: the command carries it to the gateway (§4.2).
   * Without one the command starts a trace of its own, so every query has a trace ID.
   */
  submit(
    request: SubmitQuery,
    callerId: string,
    idempotencyKey?: string,
    trace?: TraceContext,
  ): Promise<Submission>;
  /** A queued query got its slot (called by admission control): makes it pending and sends it. */
  admit(id: string): Promise<void>;
  /** Applies one event with compare-and-set and tells the listeners when the record changed. */
  apply(id: string, event: DeliveryEvent): Promise<CommandRecord>;
  /**
   * §3.8 Cancels a query that has not ended and tells its gateway (a `cancel` message on the
   * command stream). Cancelling a cancelled query returns it unchanged; an ended one is 409.
   */
  cancel(id: string): Promise<CommandRecord>;
  /**
   * Sends a pending command (or a cancelled one's cancel message) rung in by another instance
   * (gateway-push.ts), if this instance holds its gateway's stream; announces nothing further, so
   * a doorbell never bounces between instances.
   */
  deliver(id: string): Promise<void>;
  /** docs/protocol.md §4: on every (re)connection, every command not yet acked, oldest first. */
  sendUndelivered(gatewayId: string): Promise<void>;
  /**
   * One pass of the timer, exposed for tests: applies due deadlines, then sends the commands
   * found pending for the gateways whose streams this server holds.
   */
  sweep(): Promise<void>;
  start(): void;
  stop(): void;
}

export interface Submission {
  record: CommandRecord;
  /** True when an earlier request with the same idempotency key created the command. */
  replayed: boolean;
}

export type RecordChangeListener = (record: CommandRecord, event: DeliveryEvent) => void;

export interface CommandDispatcherOptions {
  store: CommandStore;
  policy: DeliveryPolicy;
  streams: CommandStreams;
  hasGateway(id: string): Promise<boolean>;
  admission: Admission;
  rowsByteLimit: number;
  /** How long a caller's idempotency key is remembered (§3.1). */
  idempotencyKeyRetentionMs: number;
  sweepIntervalMs: number;
  logger: Logger;
  onChange: RecordChangeListener;
  /**
   * A command is pending for a gateway whose stream is not on this instance (gateway-push.ts
   * rings the instance that holds it). Default: nothing; that instance's sweep finds it.
   */
  announce?(record: CommandRecord): void;
}

/** Records handled per timer tick; the rest wait for the next tick rather than stall this one. */
const SWEEP_BATCH = 100;
/**
 * Connected gateways whose pending commands one tick looks up (one `listUndelivered` each), in
 * turn: with more connected than this, each is looked at every ⌈connected / this⌉ ticks.
 */
const SWEEP_GATEWAYS = 100;

/** How often (in timer ticks) the slots held here are checked against the store. */
const RELEASE_CHECK_TICKS = 5;

export function createCommandDispatcher(options: CommandDispatcherOptions): CommandDispatcher {
  const { store, policy, streams, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let ticks = 0;
  /** Records being written: an admission that races with the insert waits for it. */
  const inserting = new Map<string, Promise<void>>();
  let sweeping: Promise<void> | undefined;
  let gatewayCursor = 0;

  /** Applies one event with compare-and-set; `changed` is true only for the writer that won. */
  async function step(
    id: string,
    event: DeliveryEvent,
  ): Promise<{ record: CommandRecord; changed: boolean }> {
    const outcome = await applyDeliveryEvent(store, id, event, policy);
    if (outcome.changed) {
      try {
        options.onChange(outcome.record, event);
      } catch (error) {
        commandLogger(logger, outcome.record).error('a state change listener failed', {
          error: String(error),
        });
      }
    }
    return outcome;
  }

  async function apply(id: string, event: DeliveryEvent): Promise<CommandRecord> {
    return (await step(id, event)).record;
  }

  /**
   * Marks a pending command dispatched (starting its ack timer) and writes it to the stream.
   *
   * Several servers may share one store, so a delivery is written only by the server whose
   * compare-and-set moved the command from pending to dispatched: the others see `changed: false`
   * and send nothing, and no delivery goes out twice. `resend` is for a gateway that just
   * (re)connected (§4): a command already dispatched is written again, since the copy sent before
   * the stream broke may be lost; the gateway dedupes it by ID.
   */
  async function dispatch(id: string, resend: boolean, announce = true): Promise<void> {
    let record = await store.get(id);
    if (!record) return;
    // A cancelled command has its cancel message to send (§4.3); the doorbell carries it too.
    const cancelled = record.state === 'cancelled';
    if (!streams.isConnected(record.gatewayId)) {
      if (announce && (record.state === 'pending' || cancelled)) options.announce?.(record);
      return;
    }
    if (cancelled) {
      if (streams.send(record)) commandLogger(logger, record).info('cancel sent to the gateway');
      return;
    }
    let claimed = false;
    if (record.state === 'pending') {
      try {
        ({ record, changed: claimed } = await step(id, { type: 'dispatch' }));
      } catch (error) {
        // Another server sent it and the gateway acked it in between: nothing left to send.
        if (BackhaulError.isInstance(error) && error.code === 'invalid-state') return;
        throw error;
      }
    }
    // Only a dispatched command goes out: one acked meanwhile needs nothing more.
    if (record.state !== 'dispatched' || !(claimed || resend)) return;
    // The command goes out naming this delivery's span, so the gateway's spans are its children.
    const span = startSpan(TRACER_NAME, 'backhaul.dispatch', commandTrace(record), {
      kind: 'producer',
      attributes: { ...commandAttributes(record), 'backhaul.delivery': record.redeliveries + 1 },
    });
    const sent = streams.send({
      ...record,
      command: { ...record.command, traceparent: formatTraceparent(span.trace) },
    });
    span.setAttributes({ 'backhaul.sent': sent });
    span.end();
    if (!sent) return;
    commandLogger(logger, record).info('command sent to the gateway', { delivery: record.redeliveries + 1 });
    failpoint('after-send');
  }

  async function sweepDeadlines(): Promise<void> {
    const due = await store.listDue(Date.now(), SWEEP_BATCH);
    for (const candidate of due) {
      try {
        const { record, changed } = await step(candidate.id, { type: 'deadline' });
        // Another server (or an ack) got there first: what follows is that writer's business.
        if (!changed) continue;
        // An ack timeout put it back to pending: resend now rather than wait for a reconnect. If
        // this server does not hold the gateway's stream, it is announced to the one that does
        // (gateway-push.ts), whose sweep (sweepConnectedGateways) is the safety net.
        if (record.state === 'pending') await dispatch(record.id, false);
        if (record.state === 'dead-lettered' || record.state === 'expired') {
          commandLogger(logger, record).warn('command gave up', {
            state: record.state,
            reason: record.reason,
          });
        }
      } catch (error) {
        commandLogger(logger, candidate).error('deadline handling failed', { error: String(error) });
      }
    }
  }

  /**
   * Sends the pending commands of the gateways whose streams this server holds. With one store
   * shared by several servers, a command can be pending for a gateway connected to another
   * server: submitted there, or put back to pending by that server's ack timeout. The server that
   * holds the stream finds it here and dispatches it with compare-and-set, so exactly one server
   * sends it. Cost: one `listUndelivered` per connected gateway, O(connected gateways) store
   * reads per full round, bounded to SWEEP_GATEWAYS per tick (taken in turn).
   */
  async function sweepConnectedGateways(): Promise<void> {
    const connected = streams.connectedGatewayIds();
    if (connected.length === 0) return;
    const count = Math.min(SWEEP_GATEWAYS, connected.length);
    const start = gatewayCursor % connected.length;
    gatewayCursor = (start + count) % connected.length;
    for (let offset = 0; offset < count; offset++) {
      const gatewayId = connected[(start + offset) % connected.length] as string;
      try {
        for (const record of await store.listUndelivered(gatewayId)) {
          // A gateway that has not taken what it was sent gets the rest on a later tick: the
          // timer never waits on one slow reader, and a backlog goes out at the reader's pace.
          if (streams.backlogged(gatewayId)) break;
          if (record.state === 'pending') await dispatch(record.id, false);
        }
      } catch (error) {
        logger.error('sending pending commands failed', { gatewayId, error: String(error) });
      }
    }
  }

  /**
   * Frees the slots of commands that ended without this process seeing it: with a shared store,
   * another server may have taken the completion, or expired a query queued here. One store read
   * per slot held or queued here, every RELEASE_CHECK_TICKS ticks; the state listener frees
   * everything this process sees end at once, so this only catches the rest.
   */
  /** A queued query whose turn came: admitted in the store, then sent. */
  async function admit(id: string): Promise<void> {
    try {
      await inserting.get(id);
      await step(id, { type: 'admit' });
      await dispatch(id, false);
    } catch (error) {
      // Expired (or never written) meanwhile: the slot goes to the next in line.
      if (
        !BackhaulError.isInstance(error) ||
        (error.code !== 'invalid-state' && error.code !== 'not-found')
      ) {
        logger.error('admitting a queued query failed', { commandId: id, error: String(error) });
      }
      // Only a store that answers may free the slot: a store error keeps it, and the periodic
      // check (releaseEnded) admits the query again once the store is back.
      const record = await store.get(id).catch(() => 'unknown' as const);
      if (record === 'unknown') return;
      if (!record || isTerminal(record.state)) options.admission.release(id);
    }
  }

  async function releaseEnded(): Promise<void> {
    if (++ticks % RELEASE_CHECK_TICKS !== 0) return;
    for (const id of options.admission.tracked()) {
      if (inserting.has(id)) continue;
      try {
        const record = await store.get(id);
        if (!record || isTerminal(record.state)) options.admission.release(id);
        // Holding a slot (not a queue place) while the store still says queued: an admission
        // that failed half-way (the store was down) is finished here rather than stranded.
        else if (record.state === 'queued' && options.admission.position(id) === undefined) {
          await admit(id);
        }
      } catch (error) {
        logger.error('checking an admitted command failed', { commandId: id, error: String(error) });
      }
    }
  }

  async function sweep(): Promise<void> {
    await sweepDeadlines();
    await sweepConnectedGateways();
    await releaseEnded();
  }

  /**
   * Persists a new record, with the caller's claim on an idempotency key when there is one.
   * Returns the claim that was there first when another request holds the key (nothing written).
   */
  async function insert(
    record: CommandRecord,
    claim: NewIdempotencyClaim | undefined,
  ): Promise<IdempotencyClaim | undefined> {
    const written: Promise<IdempotencyClaim | undefined> = claim
      ? store.insertClaimed(record, claim)
      : store.insert(record).then(() => undefined);
    // An admission racing with the write only waits for it; a failed write is this caller's error.
    inserting.set(
      record.id,
      written.then(
        () => undefined,
        () => undefined,
      ),
    );
    try {
      const existing = await written;
      // The slot taken for this record goes back: the command the key names already has its own.
      if (existing) options.admission.release(record.id);
      return existing;
    } catch (error) {
      options.admission.release(record.id);
      throw error;
    } finally {
      inserting.delete(record.id);
    }
  }

  /** The answer to a repeated key: the command it created, if the query is the same one. */
  async function replay(claim: IdempotencyClaim, fingerprint: string): Promise<Submission> {
    if (claim.fingerprint !== fingerprint) {
      throw new BackhaulError(
        'idempotency-key-reused',
        'This Idempotency-Key was already used for a different query; use a new key for a new query',
      );
    }
    const record = await store.get(claim.commandId);
    if (!record)
      throw new BackhaulError('internal', `Query ${claim.commandId} of an idempotency key is gone`);
    return { record, replayed: true };
  }

  return {
    async submit(request, callerId, idempotencyKey, trace) {
      const query = parseMessage(submitQuerySchema, request, 'query');
      // A repeat is answered before admission and the gateway check: it takes no slot, and the
      // command it names is returned even if its gateway has been removed since.
      let claim: NewIdempotencyClaim | undefined;
      if (idempotencyKey !== undefined) {
        const fingerprint = requestFingerprint(query);
        const existing = await store.findClaim(callerId, idempotencyKey);
        if (existing) return replay(existing, fingerprint);
        claim = {
          callerId,
          key: idempotencyKey,
          fingerprint,
          expiresAt: Date.now() + options.idempotencyKeyRetentionMs,
        };
      }
      if (!(await options.hasGateway(query.gatewayId))) {
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
        ...traceMembers(trace ?? { traceId: newTraceId(), spanId: newSpanId(), flags: 0 }),
      };
      const ticket: AdmissionTicket = {
        id: command.id,
        gatewayId: query.gatewayId,
        callerId,
        admissionClass: options.admission.classOf(query.mode),
      };
      // §3.7: a slot is taken before anything is written, so a refusal leaves no trace (and the
      // idempotency key stays free: a retry after the 429 creates the command).
      const refuse = async (scope: AdmissionScope): Promise<Submission> => {
        // A concurrent request with the same key may hold the very slot this one was refused:
        // then this is a repeat of it, answered as one rather than with a 429.
        const twin = claim && (await store.findClaim(callerId, claim.key));
        if (twin && claim) return replay(twin, claim.fingerprint);
        throw options.admission.refusal(scope, ticket.admissionClass);
      };
      const full = await options.admission.tryTake(ticket);
      if (full) {
        if (query.whenBusy !== 'queue') return refuse(full);
        const queueFull = options.admission.enqueue(ticket);
        if (queueFull) return refuse(queueFull);
        const queued = { ...newCommandRecord(command, query.gatewayId, policy, now, 'queued'), callerId };
        const first = await insert(queued, claim);
        if (first && claim) return replay(first, claim.fingerprint);
        commandLogger(logger, queued).info('query queued', { callerId, mode: query.mode });
        return { record: (await store.get(queued.id)) ?? queued, replayed: false };
      }
      const record = { ...newCommandRecord(command, query.gatewayId, policy, now), callerId };
      // Persist first, send second: a crash between the two leaves a pending command that the
      // next connection of the gateway picks up, never a command the store does not know.
      // A concurrent request with the same key that got there first wins; this one replays it.
      const first = await insert(record, claim);
      if (first && claim) return replay(first, claim.fingerprint);
      failpoint('after-persist');
      commandLogger(logger, record).info('query accepted', { callerId, mode: query.mode });
      await dispatch(record.id, false);
      return { record: (await store.get(record.id)) ?? record, replayed: false };
    },
    admit,
    apply,
    async cancel(id) {
      let outcome: { record: CommandRecord; changed: boolean };
      try {
        outcome = await step(id, { type: 'cancel' });
      } catch (error) {
        if (BackhaulError.isInstance(error) && error.code === 'invalid-state') {
          const state = String(error.details?.state);
          throw new BackhaulError(
            'invalid-state',
            `Query ${id} already ended (${state}): there is nothing to cancel`,
            {
              details: { queryState: state },
            },
          );
        }
        throw error;
      }
      // Only the writer that cancelled it tells the gateway (one that has not the command ignores
      // it), through dispatch: sent here, or rung in to the instance holding the gateway's stream.
      if (outcome.changed) await dispatch(id, false);
      return outcome.record;
    },
    deliver: (id) => dispatch(id, false, false),
    async sendUndelivered(gatewayId) {
      for (const record of await store.listUndelivered(gatewayId)) {
        // A backlog goes out at the pace the gateway reads it, not all into the socket's buffer.
        await streams.drained(gatewayId);
        if (!streams.isConnected(gatewayId)) return;
        await dispatch(record.id, true);
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

/** The command's members that carry its trace (§4.2). */
function traceMembers(trace: TraceContext): Pick<CommandRecord['command'], 'traceparent' | 'tracestate'> {
  return {
    traceparent: formatTraceparent(trace),
    ...(trace.tracestate ? { tracestate: trace.tracestate } : {}),
  };
}
