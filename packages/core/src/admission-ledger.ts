/**
 * Admission slots counted where every server that shares a deployment can see them
 * (docs/protocol.md §3.7, docs/cluster.md "Limits and retention").
 *
 * A server decides *whether* a query may run (its class, its limits, its queue); the ledger only
 * keeps the count and makes the check-and-take one atomic step, so two servers admitting at the
 * same moment never both take the last slot. The in-memory ledger counts one process (N servers
 * then admit N times the limits); a shared ledger (e.g. @backhaul/store-redis) counts the cluster.
 */
export type AdmissionClass = 'small' | 'medium' | 'large';

export const admissionClasses: readonly AdmissionClass[] = ['small', 'medium', 'large'];

/** Who a slot is held for. `callerId` is absent for a command adopted by a server that did not admit it. */
export interface AdmissionTicket {
  /** The command ID. */
  id: string;
  gatewayId: string;
  callerId?: string;
  admissionClass: AdmissionClass;
}

/** The most slots of one class: in all, per gateway, per caller. */
export interface ClassLimits {
  limit: number;
  perGateway: number;
  perCaller: number;
}

/** What was full when a slot was refused. */
export type LedgerRefusal = 'server' | 'gateway' | 'caller';

export interface AdmissionLedger {
  readonly name: string;
  /**
   * Takes a slot of `ticket.admissionClass` unless the class, the gateway's share or the caller's
   * share is full; says which. Taking a slot `id` already holds in that class or a bigger one
   * succeeds and renews it (a retry after a lost answer takes nothing twice).
   */
  acquire(ticket: AdmissionTicket, limits: ClassLimits): Promise<LedgerRefusal | undefined>;
  /**
   * Moves the slot of `ticket.id` to `ticket.admissionClass` in one step: the new slot is taken
   * (checked against `limits`, the old slot not counting) and the old one freed. Taking a bigger
   * class than held is the only move; holding that class or a bigger one already is a success,
   * and an `id` that holds nothing takes a new slot. Refused: nothing changes.
   */
  promote(ticket: AdmissionTicket, limits: ClassLimits): Promise<LedgerRefusal | undefined>;
  /** Frees the slot of `id`; false when it held none (already freed, or reclaimed). */
  release(id: string): Promise<boolean>;
  /**
   * Says that `ids` are still held by a living server. A shared ledger gives each slot a lease
   * and takes back the slots of a server that stopped renewing (it died): see `leaseMs`.
   */
  renew(ids: readonly string[]): Promise<void>;
  /**
   * How long a slot lives without `renew` before a shared ledger reclaims it; undefined when
   * slots never expire (the in-memory ledger: its slots die with the process that holds them).
   */
  readonly leaseMs: number | undefined;
  /** Slots taken per class, by every server using this ledger. */
  occupancy(): Promise<Record<AdmissionClass, number>>;
  close(): Promise<void>;
}

/** The in-process ledger: today's single-server behaviour, and the default. */
export function createMemoryAdmissionLedger(): AdmissionLedger {
  const held = new Map<string, AdmissionTicket>();
  // Counters kept in step with `held`, so a check is O(1) however many slots are taken.
  const counts = new Map<string, number>();
  const bump = (key: string, by: number) => {
    const n = (counts.get(key) ?? 0) + by;
    if (n === 0) counts.delete(key);
    else counts.set(key, n);
  };
  const keysOf = (ticket: AdmissionTicket) => [
    ticket.admissionClass,
    `${ticket.admissionClass} gw ${ticket.gatewayId}`,
    ...(ticket.callerId === undefined ? [] : [`${ticket.admissionClass} caller ${ticket.callerId}`]),
  ];
  const hold = (ticket: AdmissionTicket) => {
    held.set(ticket.id, { ...ticket });
    for (const key of keysOf(ticket)) bump(key, 1);
  };
  const unhold = (ticket: AdmissionTicket) => {
    held.delete(ticket.id);
    for (const key of keysOf(ticket)) bump(key, -1);
  };
  const blocker = (ticket: AdmissionTicket, limits: ClassLimits): LedgerRefusal | undefined => {
    const cls = ticket.admissionClass;
    if ((counts.get(cls) ?? 0) >= limits.limit) return 'server';
    if ((counts.get(`${cls} gw ${ticket.gatewayId}`) ?? 0) >= limits.perGateway) return 'gateway';
    if (
      ticket.callerId !== undefined &&
      (counts.get(`${cls} caller ${ticket.callerId}`) ?? 0) >= limits.perCaller
    )
      return 'caller';
    return undefined;
  };

  return {
    name: 'memory',
    leaseMs: undefined,
    async acquire(ticket, limits) {
      const current = held.get(ticket.id);
      if (current && rank[current.admissionClass] >= rank[ticket.admissionClass]) return undefined;
      if (current) return this.promote(ticket, limits);
      const refusal = blocker(ticket, limits);
      if (!refusal) hold(ticket);
      return refusal;
    },
    async promote(ticket, limits) {
      const current = held.get(ticket.id);
      if (current && rank[current.admissionClass] >= rank[ticket.admissionClass]) return undefined;
      const next: AdmissionTicket = {
        ...ticket,
        ...(ticket.callerId === undefined && current?.callerId !== undefined
          ? { callerId: current.callerId }
          : {}),
      };
      const refusal = blocker(next, limits);
      if (refusal) return refusal;
      if (current) unhold(current);
      hold(next);
      return undefined;
    },
    async release(id) {
      const ticket = held.get(id);
      if (!ticket) return false;
      unhold(ticket);
      return true;
    },
    async renew() {},
    async occupancy() {
      return {
        small: counts.get('small') ?? 0,
        medium: counts.get('medium') ?? 0,
        large: counts.get('large') ?? 0,
      };
    },
    async close() {
      held.clear();
      counts.clear();
    },
  };
}

const rank: Record<AdmissionClass, number> = { small: 0, medium: 1, large: 2 };

/** Whether class `a` is bigger than class `b`. */
export const isBiggerClass = (a: AdmissionClass, b: AdmissionClass): boolean => rank[a] > rank[b];
