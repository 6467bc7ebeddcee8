import { isTerminal } from './command-delivery.js';
import {
  type CommandRecord,
  type CommandStore,
  type FailedCommand,
  failedCommandOf,
  type IdempotencyClaim,
} from './command-store.js';
import { BackhaulError } from './errors.js';

export interface MemoryCommandStoreOptions {
  /**
   * How long a record is kept once terminal (completed, failed, expired, dead-lettered): after
   * that it is forgotten, and `get` finds nothing. Default 7 days (`defaultRetentionMs`).
   */
  retentionMs?: number;
}

/** How long a terminal command record is kept by default, in every store: 7 days. */
export const defaultRetentionMs = 7 * 24 * 60 * 60 * 1000;

/** What a memory store holds right now, for monitoring and tests. */
export interface MemoryCommandStore extends CommandStore {
  size(): { records: number; claims: number };
}

/**
 * A `CommandStore` in process memory: the embedded default. Nothing survives a restart; use a
 * durable store (e.g. @backhaul/store-redis) where that matters. Records are copied in and out
 * so callers cannot change stored state by mutating an object they hold. Terminal records and
 * expired idempotency claims are dropped as later writes come in, so a long-running process holds
 * what its retention keeps, not every command it ever saw.
 */
export function createMemoryCommandStore(options: MemoryCommandStoreOptions = {}): MemoryCommandStore {
  const retentionMs = options.retentionMs ?? defaultRetentionMs;
  if (!Number.isSafeInteger(retentionMs) || retentionMs < 0) {
    throw new RangeError(
      `createMemoryCommandStore: retentionMs must be a whole number >= 0, got ${retentionMs}`,
    );
  }
  const records = new Map<string, CommandRecord>();
  /** By `claimKey(callerId, key)`; an expired claim is dropped when it is next looked at. */
  const claims = new Map<string, IdempotencyClaim>();
  /**
   * Terminal record IDs, in the order they ended, with when each is forgotten: the oldest is
   * first, so a prune looks only at what is due (O(1) per record over its life).
   */
  const forgetAt = new Map<string, number>();
  const copy = (record: CommandRecord): CommandRecord => structuredClone(record);
  /** Drops the terminal records past their retention and the claims past their expiry. */
  const prune = (now: number) => {
    for (const [id, at] of forgetAt) {
      if (at > now) break;
      forgetAt.delete(id);
      records.delete(id);
    }
    // Claims are written in time order with one retention, so they expire nearly in order too;
    // one that does not is dropped when it is next looked at (liveClaim).
    for (const [id, claim] of claims) {
      if (claim.expiresAt > now) break;
      claims.delete(id);
    }
  };
  const remember = (record: CommandRecord) => {
    records.set(record.id, copy(record));
    if (isTerminal(record.state) && !forgetAt.has(record.id))
      forgetAt.set(record.id, Date.now() + retentionMs);
    prune(Date.now());
  };
  const liveClaim = (callerId: string, key: string) => {
    const id = claimKey(callerId, key);
    const claim = claims.get(id);
    if (claim && claim.expiresAt <= Date.now()) claims.delete(id);
    else return claim;
    return undefined;
  };

  return {
    specificationVersion: 'v1',
    name: 'memory',
    async insert(record) {
      if (records.has(record.id))
        throw new BackhaulError('invalid-state', `Command ${record.id} already exists`);
      remember(record);
    },
    async insertClaimed(record, claim) {
      // No await between the check and the writes: this is the atomic step the interface asks for.
      const existing = liveClaim(claim.callerId, claim.key);
      if (existing) return { ...existing };
      if (records.has(record.id))
        throw new BackhaulError('invalid-state', `Command ${record.id} already exists`);
      claims.set(claimKey(claim.callerId, claim.key), { ...claim, commandId: record.id });
      remember(record);
      return undefined;
    },
    async findClaim(callerId, key) {
      const claim = liveClaim(callerId, key);
      return claim && { ...claim };
    },
    async get(id) {
      const record = records.get(id);
      return record && copy(record);
    },
    async compareAndSet(next) {
      const current = records.get(next.id);
      if (!current || current.version !== next.version - 1) return false;
      remember(next);
      return true;
    },
    async listUndelivered(gatewayId) {
      return [...records.values()]
        .filter((r) => r.gatewayId === gatewayId && (r.state === 'pending' || r.state === 'dispatched'))
        .sort((a, b) => a.createdAt - b.createdAt)
        .map(copy);
    },
    async listDue(now, limit) {
      return [...records.values()]
        .filter((r) => !isTerminal(r.state) && r.deadline !== undefined && r.deadline <= now)
        .sort((a, b) => (a.deadline ?? 0) - (b.deadline ?? 0))
        .slice(0, limit)
        .map(copy);
    },
    async listDeadLetters(limit) {
      return [...records.values()]
        .filter((r) => r.state === 'dead-lettered')
        .sort((a, b) => b.updatedAt - a.updatedAt)
        .slice(0, Math.max(0, Math.floor(limit)))
        .map((r) => ({ id: r.id, reason: r.reason ?? '', at: r.updatedAt }));
    },
    async listFailures(limit) {
      return [...records.values()]
        .map(failedCommandOf)
        .filter((failure): failure is FailedCommand => failure !== undefined)
        .sort((a, b) => b.at - a.at)
        .slice(0, Math.max(0, Math.floor(limit)));
    },
    size: () => ({ records: records.size, claims: claims.size }),
    async close() {
      records.clear();
      claims.clear();
      forgetAt.clear();
    },
  };
}

/** One string per (caller, key) pair, unambiguous whatever characters either holds. */
const claimKey = (callerId: string, key: string) => JSON.stringify([callerId, key]);
