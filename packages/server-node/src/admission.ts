import { BackhaulError, type ResultMode } from '@backhaul/core';

/**
 * Admission control (docs/protocol.md §3.7): how much work one server process takes at once.
 *
 * Three concurrency classes, by what a query costs the server while it runs:
 *
 *   small  — a query answered with row batches (`rows`, and `auto` until it switches to a file)
 *   medium — a file being received (`file` from the start, `auto` from its first chunk)
 *   large  — a file whose received bytes cross `largeFileBytes`
 *
 * A file's size is not known when it is submitted, so a file starts medium and is promoted when a
 * chunk reaches past the threshold: the promotion is measured, never claimed, so nobody can dodge
 * the large class by understating a size. A promotion that finds the bigger class full answers that
 * chunk with 429 and Retry-After; the gateway sends it again later and keeps the slot it had.
 *
 * A slot is taken when a query is admitted (at submit, or when it leaves the queue) and released
 * when the command reaches a terminal state, however it got there, or when the server closes. No
 * gateway and no caller may hold more than its share of a class, so one of them flooding the
 * server still leaves slots for the others. The counts live in this process only: N servers admit
 * N times the limits.
 */
export type AdmissionClass = 'small' | 'medium' | 'large';

export const admissionClasses: readonly AdmissionClass[] = ['small', 'medium', 'large'];

export interface AdmissionLimits {
  /** Queries answered with rows at once; default 200. */
  small: number;
  /** Files being received at once; default 50. */
  medium: number;
  /** Files past `largeFileBytes` being received at once; default 10. */
  large: number;
  /** A file becomes large when a chunk reaches past this many bytes; default 100 MiB. */
  largeFileBytes: number;
  /** Fraction of each class one gateway may hold (at least one slot); default 0.8. */
  gatewayShare: number;
  /** Fraction of each class one caller may hold (at least one slot); default 0.8. */
  callerShare: number;
  /** Queries waiting for a slot in this process, all classes together; default 1000. */
  maxQueued: number;
  /** The `Retry-After` sent with a 429, in seconds; default 1. */
  retryAfterSeconds: number;
}

export const defaultAdmissionLimits: AdmissionLimits = {
  small: 200,
  medium: 50,
  large: 10,
  largeFileBytes: 100 * 1024 * 1024,
  gatewayShare: 0.8,
  callerShare: 0.8,
  maxQueued: 1000,
  retryAfterSeconds: 1,
};

/** Who a slot is held for. `callerId` is absent for a command this process did not admit itself. */
export interface AdmissionTicket {
  id: string;
  gatewayId: string;
  callerId?: string;
  admissionClass: AdmissionClass;
}

/** What is full when a slot is refused. */
export type AdmissionScope = 'server' | 'gateway' | 'caller' | 'queue';

export interface ClassOccupancy {
  limit: number;
  inUse: number;
  queued: number;
}

/** Current occupancy, for monitoring (`BackhaulServer#admission()`). */
export interface AdmissionSnapshot {
  classes: Record<AdmissionClass, ClassOccupancy>;
  /** Slots held per gateway, per class; gateways holding none are left out. */
  gateways: Record<string, Partial<Record<AdmissionClass, number>>>;
  /** Slots held per caller identity, per class. */
  callers: Record<string, Partial<Record<AdmissionClass, number>>>;
}

export interface Admission {
  /** The class a query starts in, from its mode. */
  classOf(mode: ResultMode): AdmissionClass;
  /** Takes a slot now, or says what is full. */
  tryTake(ticket: AdmissionTicket): AdmissionScope | undefined;
  /** Queues a ticket; `onAdmit` is called with its ID when a slot is taken for it. 'queue' when full. */
  enqueue(ticket: AdmissionTicket): AdmissionScope | undefined;
  /**
   * A file of command `id` reached `endOffset` bytes: moves it to the class that size needs, or
   * throws 429 when that class has no slot for it. A command this process does not hold is
   * adopted into that class (it was admitted by another server sharing the store).
   */
  promote(ticket: Omit<AdmissionTicket, 'admissionClass'>, endOffset: number): void;
  /** Frees the slot or the queue place of `id`, then admits from the queue; a no-op if unknown. */
  release(id: string): void;
  /** 1-based place of a queued ticket within its class, undefined when not queued. */
  position(id: string): number | undefined;
  /** IDs this process holds a slot or a queue place for. */
  tracked(): string[];
  /** The 429 for a refusal. */
  refusal(scope: AdmissionScope, admissionClass: AdmissionClass): BackhaulError;
  snapshot(): AdmissionSnapshot;
  /** Drops every slot and queue place (server close); nothing is admitted afterwards. */
  close(): void;
}

const rank: Record<AdmissionClass, number> = { small: 0, medium: 1, large: 2 };

const share = (limit: number, fraction: number) => Math.min(limit, Math.max(1, Math.floor(limit * fraction)));

/** Validates limits at start-up, so a typo fails the boot rather than the first busy hour. */
export function resolveAdmissionLimits(given: Partial<AdmissionLimits> | undefined): AdmissionLimits {
  const limits = { ...defaultAdmissionLimits, ...given };
  for (const name of ['small', 'medium', 'large', 'largeFileBytes', 'maxQueued'] as const) {
    const value = limits[name];
    if (!Number.isSafeInteger(value) || value < (name === 'maxQueued' ? 0 : 1)) {
      throw new RangeError(`admission.${name} must be a whole number ≥ ${name === 'maxQueued' ? 0 : 1}`);
    }
  }
  for (const name of ['gatewayShare', 'callerShare'] as const) {
    const value = limits[name];
    if (!(value > 0 && value <= 1)) throw new RangeError(`admission.${name} must be in (0, 1]`);
  }
  if (!Number.isSafeInteger(limits.retryAfterSeconds) || limits.retryAfterSeconds < 1) {
    throw new RangeError('admission.retryAfterSeconds must be a whole number ≥ 1');
  }
  return limits;
}

export function createAdmission(limits: AdmissionLimits, onAdmit: (id: string) => void): Admission {
  const held = new Map<string, AdmissionTicket>();
  const queues: Record<AdmissionClass, AdmissionTicket[]> = { small: [], medium: [], large: [] };
  const queuedIds = new Map<string, AdmissionClass>();
  let closed = false;

  // Counters kept in step with `held`, so a check is O(1) however many slots are taken.
  const inUse: Record<AdmissionClass, number> = { small: 0, medium: 0, large: 0 };
  const perGateway = new Map<string, number>();
  const perCaller = new Map<string, number>();
  const bump = (map: Map<string, number>, key: string, by: number) => {
    const n = (map.get(key) ?? 0) + by;
    if (n === 0) map.delete(key);
    else map.set(key, n);
  };
  const hold = (ticket: AdmissionTicket) => {
    held.set(ticket.id, ticket);
    inUse[ticket.admissionClass]++;
    bump(perGateway, `${ticket.admissionClass} ${ticket.gatewayId}`, 1);
    if (ticket.callerId !== undefined) bump(perCaller, `${ticket.admissionClass} ${ticket.callerId}`, 1);
  };
  const unhold = (ticket: AdmissionTicket) => {
    held.delete(ticket.id);
    inUse[ticket.admissionClass]--;
    bump(perGateway, `${ticket.admissionClass} ${ticket.gatewayId}`, -1);
    if (ticket.callerId !== undefined) bump(perCaller, `${ticket.admissionClass} ${ticket.callerId}`, -1);
  };

  /** What stops `ticket` from taking a slot of its class now. */
  const blocker = (ticket: AdmissionTicket): AdmissionScope | undefined => {
    const cls = ticket.admissionClass;
    const limit = limits[cls];
    if (inUse[cls] >= limit) return 'server';
    if ((perGateway.get(`${cls} ${ticket.gatewayId}`) ?? 0) >= share(limit, limits.gatewayShare)) {
      return 'gateway';
    }
    if (
      ticket.callerId !== undefined &&
      (perCaller.get(`${cls} ${ticket.callerId}`) ?? 0) >= share(limit, limits.callerShare)
    ) {
      return 'caller';
    }
    return undefined;
  };

  /** Gives freed slots of a class to the queue, oldest first, skipping tickets at their share. */
  const pump = (admissionClass: AdmissionClass) => {
    const queue = queues[admissionClass];
    for (let i = 0; i < queue.length && !closed; ) {
      const ticket = queue[i] as AdmissionTicket;
      const scope = blocker(ticket);
      if (scope === 'server') return;
      if (scope) {
        i++;
        continue;
      }
      queue.splice(i, 1);
      queuedIds.delete(ticket.id);
      hold(ticket);
      onAdmit(ticket.id);
    }
  };

  const tally = (key: (ticket: AdmissionTicket) => string | undefined) => {
    const out: Record<string, Partial<Record<AdmissionClass, number>>> = {};
    for (const ticket of held.values()) {
      const name = key(ticket);
      if (name === undefined) continue;
      out[name] ??= {};
      const entry = out[name];
      entry[ticket.admissionClass] = (entry[ticket.admissionClass] ?? 0) + 1;
    }
    return out;
  };

  const refusal = (scope: AdmissionScope, admissionClass: AdmissionClass) => {
    const limit = limits[admissionClass];
    const detail = {
      server: `All ${limit} ${admissionClass} slots of this server are taken`,
      gateway: `This gateway holds its share (${share(limit, limits.gatewayShare)} of ${limit}) of the ${admissionClass} slots`,
      caller: `This caller holds its share (${share(limit, limits.callerShare)} of ${limit}) of the ${admissionClass} slots`,
      queue: `The admission queue is full (${limits.maxQueued} queries wait already)`,
    }[scope];
    return new BackhaulError('too-many-requests', detail, {
      retryAfterMs: limits.retryAfterSeconds * 1000,
      details: { retryAfter: limits.retryAfterSeconds, admissionClass, scope, limit },
    });
  };

  return {
    classOf: (mode) => (mode === 'file' ? 'medium' : 'small'),

    tryTake(ticket) {
      if (closed) return 'server';
      const scope = blocker(ticket);
      if (!scope) hold(ticket);
      return scope;
    },

    enqueue(ticket) {
      if (closed || queuedIds.size >= limits.maxQueued) return 'queue';
      queues[ticket.admissionClass].push(ticket);
      queuedIds.set(ticket.id, ticket.admissionClass);
      return undefined;
    },

    promote(ticket, endOffset) {
      const needed: AdmissionClass = endOffset > limits.largeFileBytes ? 'large' : 'medium';
      const current = held.get(ticket.id);
      if (current && rank[current.admissionClass] >= rank[needed]) return;
      const next: AdmissionTicket = {
        ...ticket,
        ...(current?.callerId === undefined ? {} : { callerId: current.callerId }),
        admissionClass: needed,
      };
      // The slot it holds is in a smaller class, so it does not count against the bigger one.
      const scope = closed ? 'server' : blocker(next);
      if (scope) throw refusal(scope, needed);
      if (current) unhold(current);
      hold(next);
      // The slot it leaves behind goes to whoever waits for it.
      if (current) pump(current.admissionClass);
    },

    release(id) {
      const queuedIn = queuedIds.get(id);
      if (queuedIn) {
        queuedIds.delete(id);
        const queue = queues[queuedIn];
        queue.splice(
          queue.findIndex((ticket) => ticket.id === id),
          1,
        );
        return;
      }
      const ticket = held.get(id);
      if (!ticket) return;
      unhold(ticket);
      pump(ticket.admissionClass);
    },

    position(id) {
      const queuedIn = queuedIds.get(id);
      if (!queuedIn) return undefined;
      return queues[queuedIn].findIndex((ticket) => ticket.id === id) + 1;
    },

    tracked: () => [...held.keys(), ...queuedIds.keys()],

    refusal,

    snapshot() {
      const classes = {} as Record<AdmissionClass, ClassOccupancy>;
      for (const cls of admissionClasses) {
        classes[cls] = { limit: limits[cls], inUse: inUse[cls], queued: queues[cls].length };
      }
      return {
        classes,
        gateways: tally((ticket) => ticket.gatewayId),
        callers: tally((ticket) => ticket.callerId),
      };
    },

    close() {
      closed = true;
      for (const ticket of [...held.values()]) unhold(ticket);
      queuedIds.clear();
      for (const cls of admissionClasses) queues[cls].length = 0;
    },
  };
}
