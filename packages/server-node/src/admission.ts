import {
  type AdmissionClass,
  type AdmissionLedger,
  type AdmissionTicket,
  admissionClasses,
  BackhaulError,
  type ClassLimits,
  isBiggerClass,
  type Logger,
  type ResultMode,
} from '@backhaul/core';

export type { AdmissionClass, AdmissionTicket } from '@backhaul/core';

/**
 * Admission control (docs/protocol.md §3.7): how much work the servers take at once.
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
 * server still leaves slots for the others.
 *
 * The slots are counted by an `AdmissionLedger`: in this process by default (N servers then admit
 * N times the limits), or across every server sharing a Redis ledger (docs/cluster.md). The queue
 * of a query waiting for a slot lives in the process that took its submit: it is offered every
 * slot freed here at once, and retried on a timer for slots freed by other servers.
 */

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
  /** Queries waiting for a slot in each server process, all classes together; default 1000. */
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
  tryTake(ticket: AdmissionTicket): Promise<AdmissionScope | undefined>;
  /** Queues a ticket; `onAdmit` is called with its ID when a slot is taken for it. 'queue' when full. */
  enqueue(ticket: AdmissionTicket): AdmissionScope | undefined;
  /**
   * A file of command `id` reached `endOffset` bytes: moves it to the class that size needs, or
   * throws 429 when that class has no slot for it. A command this process does not hold is
   * adopted into that class (it was admitted by another server sharing the store).
   */
  promote(ticket: Omit<AdmissionTicket, 'admissionClass'>, endOffset: number): Promise<void>;
  /** Frees the slot or the queue place of `id`, then admits from the queue; a no-op if unknown. */
  release(id: string): void;
  /** 1-based place of a queued ticket within its class, undefined when not queued. */
  position(id: string): number | undefined;
  /** IDs this process holds a slot or a queue place for. */
  tracked(): string[];
  /** The 429 for a refusal. */
  refusal(scope: AdmissionScope, admissionClass: AdmissionClass): BackhaulError;
  /** What this process holds and queues (the ledger's `occupancy()` counts every server). */
  snapshot(): AdmissionSnapshot;
  /** Frees every slot this process holds and drops the queue (server close); nothing is admitted afterwards. */
  close(): Promise<void>;
}

export interface AdmissionOptions {
  limits: AdmissionLimits;
  ledger: AdmissionLedger;
  /** Called with the ID of a queued ticket that got its slot. */
  onAdmit(id: string): void;
  /** How often the queue is offered slots freed by other servers. */
  retryMs: number;
  logger: Logger;
}

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

export function createAdmission(options: AdmissionOptions): Admission {
  const { limits, ledger, onAdmit, logger } = options;
  /** Slots this process holds: what it renews, reports and frees on close. */
  const held = new Map<string, AdmissionTicket>();
  const queues: Record<AdmissionClass, AdmissionTicket[]> = { small: [], medium: [], large: [] };
  const queuedIds = new Map<string, AdmissionClass>();
  let closed = false;

  const classLimits = (admissionClass: AdmissionClass): ClassLimits => {
    const limit = limits[admissionClass];
    return {
      limit,
      perGateway: share(limit, limits.gatewayShare),
      perCaller: share(limit, limits.callerShare),
    };
  };

  const free = (id: string) =>
    ledger.release(id).catch((error) =>
      // Its lease (or the process's end, in memory) frees it anyway.
      logger.warn('could not free an admission slot', { commandId: id, error: String(error) }),
    );

  /** Gives free slots of a class to its queue, oldest first, skipping tickets at their share. */
  const pumpClass = async (admissionClass: AdmissionClass) => {
    const queue = queues[admissionClass];
    for (let i = 0; i < queue.length && !closed; ) {
      const ticket = queue[i] as AdmissionTicket;
      const scope = await ledger.acquire(ticket, classLimits(admissionClass));
      if (scope === 'server') return;
      if (scope) {
        i++;
        continue;
      }
      // Released (expired, cancelled) or closed while the slot was being taken: it goes back.
      if (closed || queuedIds.get(ticket.id) !== admissionClass) {
        await free(ticket.id);
        continue;
      }
      queue.splice(queue.indexOf(ticket), 1);
      queuedIds.delete(ticket.id);
      held.set(ticket.id, ticket);
      onAdmit(ticket.id);
    }
  };

  // One pump at a time: two would offer the same ticket two slots.
  let pumping: Promise<void> = Promise.resolve();
  const pump = (admissionClass: AdmissionClass) => {
    pumping = pumping
      .then(() => pumpClass(admissionClass))
      .catch((error) => logger.warn('admitting from the queue failed', { error: String(error) }));
    return pumping;
  };

  // Slots freed by other servers sharing the ledger are not announced: the queue asks again.
  const retry = setInterval(() => {
    for (const cls of admissionClasses) if (queues[cls].length > 0) void pump(cls);
  }, options.retryMs);
  retry.unref();
  // A shared ledger takes back the slots nobody renews: this process renews its own.
  const leaseMs = ledger.leaseMs;
  const renewal =
    leaseMs === undefined
      ? undefined
      : setInterval(
          () => {
            if (held.size === 0) return;
            ledger
              .renew([...held.keys()])
              .catch((error) => logger.warn('could not renew admission slots', { error: String(error) }));
          },
          Math.max(1, Math.floor(leaseMs / 3)),
        );
  renewal?.unref();

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
    const { limit, perGateway, perCaller } = classLimits(admissionClass);
    const detail = {
      server: `All ${limit} ${admissionClass} slots are taken`,
      gateway: `This gateway holds its share (${perGateway} of ${limit}) of the ${admissionClass} slots`,
      caller: `This caller holds its share (${perCaller} of ${limit}) of the ${admissionClass} slots`,
      queue: `The admission queue is full (${limits.maxQueued} queries wait already)`,
    }[scope];
    return new BackhaulError('too-many-requests', detail, {
      retryAfterMs: limits.retryAfterSeconds * 1000,
      details: { retryAfter: limits.retryAfterSeconds, admissionClass, scope, limit },
    });
  };

  return {
    classOf: (mode) => (mode === 'file' ? 'medium' : 'small'),

    async tryTake(ticket) {
      if (closed) return 'server';
      const scope = await ledger.acquire(ticket, classLimits(ticket.admissionClass));
      if (scope) return scope;
      if (closed) {
        await free(ticket.id);
        return 'server';
      }
      held.set(ticket.id, ticket);
      return undefined;
    },

    enqueue(ticket) {
      if (closed || queuedIds.size >= limits.maxQueued) return 'queue';
      queues[ticket.admissionClass].push(ticket);
      queuedIds.set(ticket.id, ticket.admissionClass);
      return undefined;
    },

    async promote(ticket, endOffset) {
      const needed: AdmissionClass = endOffset > limits.largeFileBytes ? 'large' : 'medium';
      const current = held.get(ticket.id);
      if (current && !isBiggerClass(needed, current.admissionClass)) return;
      const next: AdmissionTicket = {
        ...ticket,
        ...(current?.callerId === undefined ? {} : { callerId: current.callerId }),
        admissionClass: needed,
      };
      // The slot it holds is in a smaller class, so it does not count against the bigger one.
      const scope = closed ? 'server' : await ledger.promote(next, classLimits(needed));
      if (scope) throw refusal(scope, needed);
      held.set(ticket.id, next);
      // The slot it leaves behind goes to whoever waits for it.
      if (current) void pump(current.admissionClass);
    },

    release(id) {
      const queuedIn = queuedIds.get(id);
      if (queuedIn) {
        queuedIds.delete(id);
        const queue = queues[queuedIn];
        const at = queue.findIndex((ticket) => ticket.id === id);
        if (at >= 0) queue.splice(at, 1);
        return;
      }
      const ticket = held.get(id);
      if (!ticket) return;
      held.delete(id);
      void free(id).then(() => pump(ticket.admissionClass));
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
        let inUse = 0;
        for (const ticket of held.values()) if (ticket.admissionClass === cls) inUse++;
        classes[cls] = { limit: limits[cls], inUse, queued: queues[cls].length };
      }
      return {
        classes,
        gateways: tally((ticket) => ticket.gatewayId),
        callers: tally((ticket) => ticket.callerId),
      };
    },

    async close() {
      closed = true;
      clearInterval(retry);
      if (renewal) clearInterval(renewal);
      const ids = [...held.keys()];
      held.clear();
      queuedIds.clear();
      for (const cls of admissionClasses) queues[cls].length = 0;
      await pumping;
      await Promise.all(ids.map(free));
    },
  };
}
