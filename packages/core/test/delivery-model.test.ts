import { createRedisCommandStore } from '@backhaul/store-redis';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applyDeliveryEvent,
  BackhaulError,
  type CommandRecord,
  type CommandStore,
  createMemoryCommandStore,
  type DeliveryEvent,
  type DeliveryPolicy,
  type Failure,
  isTerminal,
  newCommandRecord,
  type StoredResult,
  transition,
} from '../src/index.js';
import { probeService } from '../src/testing/service-probe.js';

/*
 * Model-based test of at-least-once delivery (docs/protocol.md §4, §5, §7).
 *
 * Two server instances A and B share one REAL CommandStore (memory, and Redis when reachable) and
 * drive the REAL `transition`/`applyDeliveryEvent`. Their logic mirrors
 * packages/server-node/src/command-dispatcher.ts (persist → dispatch → send; deadline sweep that
 * re-sends what it put back to pending; resend of every undelivered command on connect),
 * command-stream.ts (one stream per gateway, `<id>#<delivery>` sent once per stream) and
 * gateway-api.ts (ack; completion refused unless the command is in flight; progress and fail
 * refused with 409 when the machine says so). One gateway mirrors
 * packages/gateway-node/src/command-runner.ts: dedupe by command ID, ack on every receipt
 * (duplicates too), run once, answer `complete` (and `fail` when the completion is refused).
 *
 * Between them a network of in-flight messages (SSE command events, acks, progress, completions,
 * failures) that random actions deliver in any order, drop, or duplicate; servers crash (losing
 * their streams, never the store) and restart; the gateway disconnects (the server noticing or
 * not), reconnects to A or B, fails over, restarts (losing its dedupe set). Pairs of actions race
 * on the same store so compare-and-set conflicts really happen. Every run ends with a healing phase:
 * servers up, a fresh gateway connection, every message delivered, the clock pushed past every
 * deadline with sweeps on both servers, until nothing is left in flight and every record is
 * terminal.
 *
 * Invariants (checked after every run, and some at the moment of the write):
 *  1. No command lost: every submitted command is still in the store and terminal; completed with
 *     a result the gateway produced, failed with an error the gateway sent, or expired /
 *     dead-lettered with a reason; dead-lettered only after 1 + maxRedeliveries dispatches none of
 *     whose acks reached a server.
 *  2. No result committed twice: at most one write ever stored `completed` for an ID, and the
 *     gateway ran each command at most once per life (its dedupe).
 *  3. Versions: every write is version + 1 of the last, each stored record is exactly what
 *     `transition` gives for some event from the one before, and no read goes backwards.
 *
 * Reproduce: BACKHAUL_MODEL_SEED=<seed> (fast-check prints the seed and path of a failure);
 * BACKHAUL_MODEL_RUNS=<n> changes the run count. BACKHAUL_MODEL_STRICT=stranded, =refused or =1
 * (both) also fails on the known gaps counted in `Stats`, so fast-check shrinks each to a minimal
 * scenario.
 */

const SEED = Number(process.env.BACKHAUL_MODEL_SEED ?? 20_240_917);
const RUNS = Number(process.env.BACKHAUL_MODEL_RUNS ?? 2000);
const REDIS_RUNS = Math.max(1, Math.round(RUNS / 10));
const MAX_ACTIONS = 60;
const strictness = process.env.BACKHAUL_MODEL_STRICT ?? '';
const STRICT_STRANDED = strictness === '1' || strictness.includes('stranded');
// A completion refused while pending was a real gap (fixed: answers are taken from pending), so it always fails now.
const STRICT_REFUSED = true;
const GATEWAY = 'gw-1';
const SWEEP_BATCH = 100;

type ServerName = 'A' | 'B';
const serverNames: readonly ServerName[] = ['A', 'B'];

type Message =
  | { kind: 'command'; from: ServerName; conn: number; id: string; delivery: number }
  | { kind: 'ack'; id: string }
  | { kind: 'progress'; id: string; rows: number }
  | { kind: 'complete'; id: string; result: StoredResult }
  | { kind: 'fail'; id: string; error: Failure };

type SimpleAction =
  | { t: 'submit'; s: ServerName; crash: 'none' | 'afterInsert' | 'afterDispatch' }
  | { t: 'deliver'; i: number; s: ServerName }
  | { t: 'sweep'; s: ServerName; crash: boolean };

type Action =
  | SimpleAction
  | { t: 'drop'; i: number }
  | { t: 'duplicate'; i: number }
  /** One request arrives twice at once, at A and at B (a duplicating proxy, a retry racing the original). */
  | { t: 'deliverTwice'; i: number }
  | { t: 'run'; i: number; outcome: 'complete' | 'fail' | 'progress' }
  | { t: 'tick'; ms: number }
  | { t: 'crash'; s: ServerName }
  | { t: 'restart'; s: ServerName }
  | { t: 'connect'; s: ServerName; noticed: boolean }
  | { t: 'disconnect'; noticed: boolean }
  | { t: 'notice'; s: ServerName }
  | { t: 'gatewayRestart' }
  | { t: 'race'; a: SimpleAction; b: SimpleAction };

interface Scenario {
  policy: DeliveryPolicy;
  actions: Action[];
  /** Where the gateway reconnects in the healing phase. */
  healTo: ServerName;
}

const server = fc.constantFrom<ServerName>('A', 'B');
/** True one time in eight: crash points are interesting, but a run needs time up too. */
const rarely = fc.oneof(
  { weight: 7, arbitrary: fc.constant(false) },
  { weight: 1, arbitrary: fc.constant(true) },
);
const simpleAction: fc.Arbitrary<SimpleAction> = fc.oneof(
  fc.record({
    t: fc.constant('submit' as const),
    s: server,
    crash: fc.oneof(
      { weight: 10, arbitrary: fc.constant('none' as const) },
      { weight: 1, arbitrary: fc.constantFrom('afterInsert' as const, 'afterDispatch' as const) },
    ),
  }),
  fc.record({ t: fc.constant('deliver' as const), i: fc.nat(), s: server }),
  fc.record({ t: fc.constant('sweep' as const), s: server, crash: rarely }),
);
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: simpleAction },
  { weight: 8, arbitrary: fc.record({ t: fc.constant('deliver' as const), i: fc.nat(), s: server }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('drop' as const), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('duplicate' as const), i: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('deliverTwice' as const), i: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('run' as const),
      i: fc.nat(),
      outcome: fc.constantFrom(
        'complete' as const,
        'complete' as const,
        'fail' as const,
        'progress' as const,
      ),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 40 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant('sweep' as const), s: server, crash: rarely }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crash' as const), s: server }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('restart' as const), s: server }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('connect' as const), s: server, noticed: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('disconnect' as const), noticed: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('notice' as const), s: server }) },
  { weight: 1, arbitrary: fc.constant({ t: 'gatewayRestart' as const }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('race' as const), a: simpleAction, b: simpleAction }) },
);
const scenario: fc.Arbitrary<Scenario> = fc.record({
  policy: fc.record({
    ackTimeoutMs: fc.integer({ min: 5, max: 30 }),
    maxRedeliveries: fc.integer({ min: 0, max: 3 }),
    completionTimeoutMs: fc.integer({ min: 20, max: 80 }),
    queueTimeoutMs: fc.integer({ min: 40, max: 150 }),
  }),
  actions: fc.array(action, { minLength: 1, maxLength: MAX_ACTIONS, size: 'max' }),
  healTo: server,
});

/** What the model remembers about one command, outside the store. */
interface Track {
  /** Acks whose applyDeliveryEvent resolved on a server. */
  acksApplied: number;
  /** SSE command events put on a stream. */
  sends: number;
  /** Results the gateway sent in `complete`, and errors it sent in `fail`. */
  produced: StoredResult[];
  failures: Failure[];
}

interface Stats {
  runs: number;
  actions: number;
  commands: number;
  completed: number;
  failed: number;
  expired: number;
  deadLettered: number;
  sends: number;
  duplicatesDeduped: number;
  casConflicts: number;
  crashes: number;
  /** Known gaps, reported rather than failed unless BACKHAUL_MODEL_STRICT=1. */
  stranded: number;
  refusedResults: number;
  dispatchErrors: number;
}

const newStats = (): Stats => ({
  runs: 0,
  actions: 0,
  commands: 0,
  completed: 0,
  failed: 0,
  expired: 0,
  deadLettered: 0,
  sends: 0,
  duplicatesDeduped: 0,
  casConflicts: 0,
  crashes: 0,
  stranded: 0,
  refusedResults: 0,
  dispatchErrors: 0,
});

/** Deliberate breakage, to show the invariants can fail. */
interface Sabotage {
  gatewayForgets?: boolean;
}

interface ServerState {
  up: boolean;
  /** Bumped by every crash: an operation that started before it must stop. */
  epoch: number;
  /** The server's view of the gateway's stream (command-stream.ts). */
  stream: { conn: number; sent: Set<string>; closed: boolean } | undefined;
}

/** Sorted-key JSON: records read back from Redis lose `undefined` keys and their order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

class DispatchRace extends Error {}

class DeliveryModel {
  clock = 1_000_000;
  readonly store: CommandStore;
  readonly servers: Record<ServerName, ServerState> = {
    A: { up: true, epoch: 0, stream: undefined },
    B: { up: true, epoch: 0, stream: undefined },
  };
  readonly gateway = {
    incarnation: 1,
    conn: undefined as { server: ServerName; id: number; since: number } | undefined,
    seen: new Set<string>(),
    running: new Map<string, number>(),
    /** `<incarnation>:<id>` → how many times it ran to an answer. */
    executions: new Map<string, number>(),
  };
  inflight: Message[] = [];
  readonly tracks = new Map<string, Track>();
  readonly submitted: string[] = [];
  /** Every record ever written, by id and version. */
  readonly writes = new Map<string, Map<number, CommandRecord>>();
  readonly completedWrites = new Map<string, number>();
  readonly violations: string[] = [];
  private nextConn = 0;
  private nextCommand = 0;
  private nextResult = 0;
  private readonly now = () => this.clock;

  constructor(
    readonly inner: CommandStore,
    readonly policy: DeliveryPolicy,
    readonly stats: Stats,
    readonly sabotage: Sabotage = {},
  ) {
    this.store = this.observe(inner);
  }

  violation(text: string): void {
    this.violations.push(text);
  }

  /** The real store, watched: every write is logged, every read checked not to go backwards. */
  private observe(inner: CommandStore): CommandStore {
    const latest = (id: string) => Math.max(0, ...(this.writes.get(id)?.keys() ?? []));
    return {
      specificationVersion: 'v1',
      name: `observed ${inner.name}`,
      insert: async (record) => {
        await inner.insert(record);
        this.onWrite(record);
      },
      insertClaimed: async (record, claim) => {
        const existing = await inner.insertClaimed(record, claim);
        if (!existing) this.onWrite(record);
        return existing;
      },
      findClaim: (callerId, key) => inner.findClaim(callerId, key),
      get: async (id) => {
        const floor = latest(id);
        const record = await inner.get(id);
        if (record && record.version < floor)
          this.violation(`${id}: read version ${record.version} after version ${floor} was written`);
        return record;
      },
      compareAndSet: async (next) => {
        const written = await inner.compareAndSet(next);
        if (written) this.onWrite(next);
        else this.stats.casConflicts++;
        return written;
      },
      listUndelivered: (gatewayId) => inner.listUndelivered(gatewayId),
      listDue: (now, limit) => inner.listDue(now, limit),
      close: () => inner.close(),
    };
  }

  private onWrite(next: CommandRecord): void {
    let versions = this.writes.get(next.id);
    if (!versions) {
      versions = new Map();
      this.writes.set(next.id, versions);
    }
    if (versions.has(next.version)) this.violation(`${next.id}: version ${next.version} written twice`);
    versions.set(next.version, structuredClone(next));
    const previous = versions.get(next.version - 1);
    const track = this.track(next.id);

    if (next.state === 'completed') {
      const count = (this.completedWrites.get(next.id) ?? 0) + 1;
      this.completedWrites.set(next.id, count);
      if (count > 1) this.violation(`${next.id}: result committed ${count} times`);
    }
    if (next.state === 'dead-lettered' && previous?.state !== 'dead-lettered') {
      const dispatches = [...versions.values()].filter((r) => r.state === 'dispatched').length;
      if (track.acksApplied > 0)
        this.violation(`${next.id}: dead-lettered although ${track.acksApplied} ack(s) reached a server`);
      if (dispatches !== this.policy.maxRedeliveries + 1 || next.redeliveries !== this.policy.maxRedeliveries)
        this.violation(
          `${next.id}: dead-lettered after ${dispatches} dispatches, ${next.redeliveries} redeliveries`,
        );
    }
    // Known gap 1: a command went back to pending (or was submitted) on the server the gateway is
    // NOT connected to; nothing tells the server holding the stream, so it waits for a reconnect
    // and expires "because the gateway did not connect" while the gateway was connected all along.
    if (next.state === 'expired' && previous?.state === 'pending') {
      const conn = this.gateway.conn;
      const holder = conn && this.servers[conn.server];
      if (conn && holder?.up && holder.stream?.conn === conn.id && conn.since <= previous.updatedAt) {
        this.stats.stranded++;
        if (STRICT_STRANDED)
          this.violation(`${next.id}: expired pending while the gateway stayed connected to ${conn.server}`);
      }
    }
  }

  track(id: string): Track {
    let track = this.tracks.get(id);
    if (!track) {
      track = { acksApplied: 0, sends: 0, produced: [], failures: [] };
      this.tracks.set(id, track);
    }
    return track;
  }

  private isConnected(s: ServerName): boolean {
    const state = this.servers[s];
    return state.up && state.stream !== undefined && !state.stream.closed;
  }

  private alive(s: ServerName, epoch: number): boolean {
    return this.servers[s].up && this.servers[s].epoch === epoch;
  }

  private crash(s: ServerName): void {
    const state = this.servers[s];
    if (!state.up) return;
    this.stats.crashes++;
    state.up = false;
    state.epoch++;
    state.stream = undefined;
    if (this.gateway.conn?.server === s) this.gateway.conn = undefined;
    // Its TCP connections die with it: SSE events it wrote and the gateway has not read are gone.
    this.inflight = this.inflight.filter((m) => m.kind !== 'command' || m.from !== s);
  }

  // --- server side: command-dispatcher.ts and command-stream.ts -----------------------------

  private send(s: ServerName, record: CommandRecord): void {
    const stream = this.servers[s].stream;
    if (!stream || stream.closed) return;
    const delivery = record.redeliveries + 1;
    const key = `${record.id}#${delivery}`;
    if (stream.sent.has(key)) return;
    stream.sent.add(key);
    this.inflight.push({ kind: 'command', from: s, conn: stream.conn, id: record.id, delivery });
    this.track(record.id).sends++;
    this.stats.sends++;
  }

  private async dispatch(
    s: ServerName,
    epoch: number,
    id: string,
    crashBeforeSend = false,
    resend = false,
  ): Promise<void> {
    let record = await this.store.get(id);
    if (!this.alive(s, epoch) || !record || !this.isConnected(s)) return;
    let claimed = false;
    if (record.state === 'pending') {
      try {
        ({ record, changed: claimed } = await applyDeliveryEvent(
          this.store,
          id,
          { type: 'dispatch' },
          this.policy,
          this.now,
        ));
      } catch (error) {
        // Acked (from an earlier copy) between the read and the write: the machine refuses the
        // dispatch and command-dispatcher.ts lets the error out (submit answers 409,
        // sendUndelivered stops early). Harmless here: the command is acknowledged.
        if (!BackhaulError.isInstance(error) || error.code !== 'invalid-state') throw error;
        this.stats.dispatchErrors++;
        throw new DispatchRace();
      }
    }
    if (!this.alive(s, epoch)) return;
    if (crashBeforeSend) return this.crash(s);
    // command-dispatcher.ts: only the server whose compare-and-set claimed it sends, or a resend on connect.
    if (record.state === 'dispatched' && (claimed || resend)) this.send(s, record);
  }

  async submit(s: ServerName, crash: 'none' | 'afterInsert' | 'afterDispatch'): Promise<void> {
    if (!this.servers[s].up) return;
    const epoch = this.servers[s].epoch;
    const id = `cmd-${++this.nextCommand}`;
    const record = newCommandRecord(
      {
        v: 1,
        id,
        type: 'query',
        sql: 'SELECT 1',
        params: [],
        mode: 'rows',
        rowsByteLimit: 1024,
        issuedAt: 0,
      },
      GATEWAY,
      this.policy,
      this.clock,
    );
    this.track(id);
    // Persist first, send second (command-dispatcher.ts submit).
    await this.store.insert(record);
    this.submitted.push(id);
    this.stats.commands++;
    if (!this.alive(s, epoch)) return;
    if (crash === 'afterInsert') return this.crash(s);
    await this.dispatch(s, epoch, id, crash === 'afterDispatch');
  }

  async sweep(s: ServerName, crashAfterWrite: boolean): Promise<void> {
    if (!this.servers[s].up) return;
    const epoch = this.servers[s].epoch;
    const due = await this.store.listDue(this.clock, SWEEP_BATCH);
    for (const candidate of due) {
      if (!this.alive(s, epoch)) return;
      const { record, changed } = await applyDeliveryEvent(
        this.store,
        candidate.id,
        { type: 'deadline' },
        this.policy,
        this.now,
      );
      if (!this.alive(s, epoch)) return;
      if (crashAfterWrite) return this.crash(s);
      // Another writer got there first: what follows is its business (command-dispatcher.ts).
      if (!changed) continue;
      if (record.state === 'pending') await this.dispatch(s, epoch, record.id);
    }
    // sweepConnectedGateways: the server holding the stream sends what is pending for its gateway.
    if (!this.alive(s, epoch) || !this.isConnected(s)) return;
    for (const record of await this.store.listUndelivered(GATEWAY)) {
      if (!this.alive(s, epoch)) return;
      if (record.state === 'pending') await this.dispatch(s, epoch, record.id);
    }
  }

  private async sendUndelivered(s: ServerName): Promise<void> {
    const epoch = this.servers[s].epoch;
    for (const record of await this.store.listUndelivered(GATEWAY)) {
      if (!this.alive(s, epoch) || !this.isConnected(s)) return;
      await this.dispatch(s, epoch, record.id, false, true);
    }
  }

  /** gateway-api.ts: what a server does with an answer from the gateway. */
  private async receiveAnswer(s: ServerName, message: Exclude<Message, { kind: 'command' }>): Promise<void> {
    const { id } = message;
    const stored = await this.store.get(id);
    if (!stored) return this.violation(`${id}: server ${s} got ${message.kind} for a command the store lost`);
    const apply = (event: DeliveryEvent) => applyDeliveryEvent(this.store, id, event, this.policy, this.now);
    const refused = (error: unknown) => BackhaulError.isInstance(error) && error.code === 'invalid-state';
    switch (message.kind) {
      case 'ack': {
        const { record } = await apply({ type: 'ack' });
        this.track(id).acksApplied++;
        // §5.1: once an ack reached a server the command is never sent again.
        if (record.state === 'pending' || record.state === 'dispatched')
          this.violation(`${id}: still ${record.state} after an ack reached server ${s}`);
        return;
      }
      case 'progress':
        // 409 when not in flight; progress is not retried.
        await apply({ type: 'progress', progress: { rows: message.rows } }).catch((error) => {
          if (!refused(error)) throw error;
        });
        return;
      case 'fail':
        await apply({ type: 'fail', error: message.error }).catch((error) => {
          if (!refused(error)) throw error;
        });
        return;
      case 'complete': {
        if (stored.state === 'completed') return; // a repeated completion gets the same answer
        let error: unknown;
        if (isTerminal(stored.state)) {
          error = new BackhaulError('invalid-state', `Cannot accept a completion in state ${stored.state}`);
        } else {
          try {
            await apply({ type: 'complete', result: message.result });
            return;
          } catch (caught) {
            if (!refused(caught)) throw caught;
            error = caught;
          }
        }
        // Known gap 2: a completion that reaches the server while the command is back in pending
        // (its ack was lost and the ack deadline passed) is refused with 409, not retried, and
        // the gateway's follow-up `fail` is refused too: the result is thrown away.
        const now = await this.store.get(id);
        if (now?.state === 'pending') {
          this.stats.refusedResults++;
          if (STRICT_REFUSED)
            this.violation(`${id}: completion refused while pending; the result was discarded`);
        }
        // command-runner.ts: a completion that throws is reported as a failure.
        const failure = {
          code: 'invalid-state',
          message: error instanceof Error ? error.message : 'refused',
        };
        this.track(id).failures.push(failure);
        this.inflight.push({ kind: 'fail', id, error: failure });
        return;
      }
    }
  }

  // --- gateway side: command-runner.ts ------------------------------------------------------

  private receiveCommand(message: Extract<Message, { kind: 'command' }>): void {
    const gateway = this.gateway;
    // Written to a stream the gateway no longer reads: lost.
    if (!gateway.conn || gateway.conn.id !== message.conn) return;
    const duplicate = gateway.seen.has(message.id);
    this.inflight.push({ kind: 'ack', id: message.id }); // acked again on a duplicate (§5.1)
    if (duplicate) {
      this.stats.duplicatesDeduped++;
      return;
    }
    if (!this.sabotage.gatewayForgets) gateway.seen.add(message.id);
    gateway.running.set(message.id, message.delivery);
  }

  private runCommand(id: string, outcome: 'complete' | 'fail' | 'progress'): void {
    const gateway = this.gateway;
    if (outcome === 'progress') {
      this.inflight.push({ kind: 'progress', id, rows: ++this.nextResult });
      return;
    }
    gateway.running.delete(id);
    const key = `${gateway.incarnation}:${id}`;
    const runs = (gateway.executions.get(key) ?? 0) + 1;
    gateway.executions.set(key, runs);
    if (runs > 1) this.violation(`${id}: the gateway ran it ${runs} times in one life`);
    const track = this.track(id);
    if (outcome === 'complete') {
      const result: StoredResult = { kind: 'rows', rowCount: ++this.nextResult, batchCount: 1 };
      track.produced.push(result);
      this.inflight.push({ kind: 'complete', id, result });
    } else {
      const error = { code: 'query-failed', message: `run ${++this.nextResult} failed` };
      track.failures.push(error);
      this.inflight.push({ kind: 'fail', id, error });
    }
  }

  private closeGatewayConnection(noticed: boolean): void {
    const conn = this.gateway.conn;
    if (!conn) return;
    const stream = this.servers[conn.server].stream;
    if (noticed && stream?.conn === conn.id) stream.closed = true;
    this.gateway.conn = undefined;
  }

  private async connect(s: ServerName, noticed: boolean): Promise<void> {
    if (!this.servers[s].up) return;
    this.closeGatewayConnection(noticed);
    const id = ++this.nextConn;
    this.gateway.conn = { server: s, id, since: this.clock };
    // open(): the new stream replaces any previous one of this gateway on that server.
    this.servers[s].stream = { conn: id, sent: new Set(), closed: false };
    await this.sendUndelivered(s);
  }

  private async deliver(i: number, s: ServerName): Promise<void> {
    if (this.inflight.length === 0) return;
    const index = i % this.inflight.length;
    const message = this.inflight[index]!;
    if (message.kind === 'command') {
      this.inflight.splice(index, 1);
      return this.receiveCommand(message);
    }
    // The gateway retries a request a down server refused; the message stays in flight.
    if (!this.servers[s].up) return;
    this.inflight.splice(index, 1);
    await this.receiveAnswer(s, message);
  }

  // --- actions --------------------------------------------------------------------------------

  async perform(a: Action): Promise<void> {
    try {
      await this.performUnguarded(a);
    } catch (error) {
      if (!(error instanceof DispatchRace)) throw error;
    }
  }

  private async performUnguarded(a: Action): Promise<void> {
    switch (a.t) {
      case 'submit':
        return this.submit(a.s, a.crash);
      case 'deliver':
        return this.deliver(a.i, a.s);
      case 'sweep':
        return this.sweep(a.s, a.crash);
      case 'drop':
        if (this.inflight.length > 0) this.inflight.splice(a.i % this.inflight.length, 1);
        return;
      case 'duplicate':
        if (this.inflight.length > 0) this.inflight.push(this.inflight[a.i % this.inflight.length]!);
        return;
      case 'deliverTwice': {
        if (this.inflight.length === 0) return;
        const index = a.i % this.inflight.length;
        const message = this.inflight[index]!;
        if (message.kind === 'command' || !this.servers.A.up || !this.servers.B.up) return;
        this.inflight.splice(index, 1);
        await Promise.all([this.receiveAnswer('A', message), this.receiveAnswer('B', message)]);
        return;
      }
      case 'run': {
        const running = [...this.gateway.running.keys()];
        if (running.length > 0) this.runCommand(running[a.i % running.length]!, a.outcome);
        return;
      }
      case 'tick':
        this.clock += a.ms;
        return;
      case 'crash':
        return this.crash(a.s);
      case 'restart':
        if (!this.servers[a.s].up) {
          this.servers[a.s].up = true;
          this.servers[a.s].stream = undefined;
        }
        return;
      case 'connect':
        return this.connect(a.s, a.noticed);
      case 'disconnect':
        return this.closeGatewayConnection(a.noticed);
      case 'notice': {
        const stream = this.servers[a.s].stream;
        if (stream && this.gateway.conn?.id !== stream.conn) stream.closed = true;
        return;
      }
      case 'gatewayRestart':
        this.closeGatewayConnection(false);
        this.gateway.incarnation++;
        this.gateway.seen = new Set();
        this.gateway.running = new Map();
        return;
      case 'race':
        await Promise.all([this.perform(a.a), this.perform(a.b)]);
        return;
    }
  }

  /** The network heals: servers up, a fresh connection, everything delivered, every deadline passed. */
  async heal(to: ServerName): Promise<void> {
    for (const s of serverNames) await this.perform({ t: 'restart', s });
    await this.perform({ t: 'connect', s: to, noticed: true });
    const span =
      Math.max(this.policy.ackTimeoutMs, this.policy.completionTimeoutMs, this.policy.queueTimeoutMs) + 1;
    for (let round = 0; round < 4 * (this.policy.maxRedeliveries + 4); round++) {
      for (let steps = 0; this.inflight.length > 0 || this.gateway.running.size > 0; steps++) {
        if (steps > 10_000) throw new Error('the network does not drain');
        if (this.inflight.length > 0) await this.perform({ t: 'deliver', i: 0, s: to });
        else this.runCommand([...this.gateway.running.keys()][0]!, 'complete');
      }
      const records = await Promise.all(this.submitted.map((id) => this.inner.get(id)));
      if (records.every((r) => r && isTerminal(r.state))) return;
      this.clock += span;
      for (const s of serverNames) await this.perform({ t: 'sweep', s, crash: false });
    }
  }

  /** Invariants 1-3 at quiescence. */
  async check(): Promise<void> {
    for (const id of this.submitted) {
      const record = await this.inner.get(id);
      const track = this.track(id);
      if (!record) {
        this.violation(`${id}: gone from the store`);
        continue;
      }
      if (!isTerminal(record.state)) this.violation(`${id}: stuck in ${record.state} at quiescence`);
      if (record.state === 'completed') {
        this.stats.completed++;
        if (!track.produced.some((r) => canonical(r) === canonical(record.result)))
          this.violation(`${id}: completed with a result the gateway never produced`);
      }
      if (record.state === 'failed') {
        this.stats.failed++;
        if (!track.failures.some((f) => canonical(f) === canonical(record.error)))
          this.violation(`${id}: failed with an error the gateway never sent`);
      }
      if (record.state === 'expired') this.stats.expired++;
      if (record.state === 'dead-lettered') this.stats.deadLettered++;
      if ((record.state === 'expired' || record.state === 'dead-lettered') && !record.reason)
        this.violation(`${id}: ${record.state} without a reason`);

      // 3. The write log: versions 1..n, each a transition the machine allows.
      const versions = this.writes.get(id) ?? new Map<number, CommandRecord>();
      const top = Math.max(...versions.keys());
      if (top !== record.version)
        this.violation(`${id}: stored version ${record.version}, last write ${top}`);
      const first = versions.get(1);
      if (first?.state !== 'pending') this.violation(`${id}: version 1 is not a pending record`);
      for (let v = 2; v <= top; v++) {
        const before = versions.get(v - 1);
        const after = versions.get(v);
        if (!before || !after) {
          this.violation(`${id}: version ${v - 1} or ${v} was never written`);
          continue;
        }
        if (!this.allowed(before, after))
          this.violation(`${id}: ${before.state}@${v - 1} → ${after.state}@${v} is not a machine step`);
      }
    }
    for (const [id, count] of this.completedWrites)
      if (count > 1) this.violation(`${id}: result committed ${count} times`);
  }

  private allowed(before: CommandRecord, after: CommandRecord): boolean {
    const events: DeliveryEvent[] = [{ type: 'dispatch' }, { type: 'ack' }, { type: 'deadline' }];
    if (after.progress) events.push({ type: 'progress', progress: after.progress });
    if (after.result) events.push({ type: 'complete', result: after.result });
    if (after.error) events.push({ type: 'fail', error: after.error });
    return events.some((event) => {
      try {
        const next = transition(before, event, this.policy, after.updatedAt);
        return next !== before && canonical(next) === canonical(after);
      } catch {
        return false;
      }
    });
  }
}

type StoreFactory = () => Promise<CommandStore>;

function deliveryProperty(stats: Stats, makeStore: StoreFactory, sabotage: Sabotage = {}) {
  return fc.asyncProperty(scenario, async ({ policy, actions, healTo }) => {
    const store = await makeStore();
    const model = new DeliveryModel(store, policy, stats, sabotage);
    try {
      stats.runs++;
      for (const a of actions) {
        stats.actions++;
        await model.perform(a);
      }
      await model.heal(healTo);
      await model.check();
    } finally {
      await store.close();
    }
    if (model.violations.length > 0) throw new Error(`invariant broken:\n  ${model.violations.join('\n  ')}`);
  });
}

function report(label: string, stats: Stats, startedAt: number): void {
  console.log(
    `[delivery model, ${label}] ${stats.runs} runs, ${stats.actions} actions, ${stats.commands} commands ` +
      `(${stats.completed} completed, ${stats.failed} failed, ${stats.expired} expired, ` +
      `${stats.deadLettered} dead-lettered); ${stats.sends} sends, ${stats.duplicatesDeduped} duplicates ` +
      `deduped, ${stats.casConflicts} CAS conflicts, ${stats.crashes} crashes; 0 lost, 0 committed twice; ` +
      `known gaps seen: ${stats.stranded} stranded pending, ${stats.refusedResults} refused results, ` +
      `${stats.dispatchErrors} dispatch races; seed ${SEED}; ${Date.now() - startedAt} ms`,
  );
}

describe('at-least-once delivery, model-based (two servers, one shared store, one gateway)', () => {
  it(`loses no command and commits no result twice over ${RUNS} runs (memory store)`, async () => {
    const stats = newStats();
    const startedAt = Date.now();
    await fc.assert(
      deliveryProperty(stats, async () => createMemoryCommandStore()),
      { seed: SEED, numRuns: RUNS },
    );
    report('memory', stats, startedAt);
    expect(stats.commands).toBeGreaterThan(RUNS);
    expect(stats.completed).toBeGreaterThan(0);
    expect(stats.deadLettered).toBeGreaterThan(0);
    expect(stats.casConflicts).toBeGreaterThan(0);
  });

  it('finds a counterexample when the gateway does not dedupe by command ID', async () => {
    const result = await fc.check(
      deliveryProperty(newStats(), async () => createMemoryCommandStore(), { gatewayForgets: true }),
      { seed: SEED, numRuns: 300 },
    );
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch(/ran it 2 times/);
  });

  it('finds a counterexample when the store does not compare versions', async () => {
    // A store whose compareAndSet writes blindly: two servers' steps from the same version both land.
    const blind = async (): Promise<CommandStore> => {
      const store = createMemoryCommandStore();
      return {
        ...store,
        compareAndSet: async (next) => {
          const current = await store.get(next.id);
          if (!current) return false;
          await store.compareAndSet({ ...next, version: current.version + 1 });
          return true;
        },
      };
    };
    const result = await fc.check(deliveryProperty(newStats(), blind), { seed: SEED, numRuns: 300 });
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch(/written twice|committed \d times/);
  });
});

const redisUrl = process.env.BACKHAUL_REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisService = await probeService(
  'Redis',
  async () => {
    const probe = new Redis(redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    try {
      await probe.connect();
      await probe.ping();
    } finally {
      probe.disconnect();
    }
  },
  {
    at: redisUrl,
    skipping: 'the Redis run of the delivery model',
    hint: 'Start Redis, or set BACKHAUL_REDIS_URL',
  },
);

redisService.describe('at-least-once delivery, model-based, on the Redis store', () => {
  const base = `backhaul-model-test:${process.pid}:${Date.now()}:`;
  let redis: Redis | undefined;
  afterAll(async () => {
    if (!redis) return;
    const keys: string[] = [];
    for await (const batch of redis.scanStream({ match: `${base}*`, count: 1000 })) keys.push(...batch);
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    redis.disconnect();
  });

  it(`loses no command and commits no result twice over ${REDIS_RUNS} runs (Redis store)`, async () => {
    redis = new Redis(redisUrl);
    const connection = redis;
    const stats = newStats();
    const startedAt = Date.now();
    let run = 0;
    await fc.assert(
      deliveryProperty(stats, async () =>
        createRedisCommandStore({ redis: connection, keyPrefix: `${base}${++run}:` }),
      ),
      { seed: SEED, numRuns: REDIS_RUNS },
    );
    report('redis', stats, startedAt);
    expect(stats.completed).toBeGreaterThan(0);
  });
});
