import { isTerminal } from './command-delivery.js';
import type { CommandRecord, CommandStore, IdempotencyClaim } from './command-store.js';
import { BackhaulError } from './errors.js';

/**
 * A `CommandStore` in process memory: the embedded default. Nothing survives a restart; use a
 * durable store (e.g. @backhaul/store-redis) where that matters. Records are copied in and out
 * so callers cannot change stored state by mutating an object they hold.
 */
export function createMemoryCommandStore(): CommandStore {
  const records = new Map<string, CommandRecord>();
  /** By `claimKey(callerId, key)`; an expired claim is dropped when it is next looked at. */
  const claims = new Map<string, IdempotencyClaim>();
  const copy = (record: CommandRecord): CommandRecord => structuredClone(record);
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
      records.set(record.id, copy(record));
    },
    async insertClaimed(record, claim) {
      // No await between the check and the writes: this is the atomic step the interface asks for.
      const existing = liveClaim(claim.callerId, claim.key);
      if (existing) return { ...existing };
      if (records.has(record.id))
        throw new BackhaulError('invalid-state', `Command ${record.id} already exists`);
      records.set(record.id, copy(record));
      claims.set(claimKey(claim.callerId, claim.key), { ...claim, commandId: record.id });
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
      records.set(next.id, copy(next));
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
    async close() {
      records.clear();
      claims.clear();
    },
  };
}

/** One string per (caller, key) pair, unambiguous whatever characters either holds. */
const claimKey = (callerId: string, key: string) => JSON.stringify([callerId, key]);
