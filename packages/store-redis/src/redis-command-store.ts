import {
  BackhaulError,
  type CommandRecord,
  type CommandStore,
  type DeadLetter,
  defaultRetentionMs,
  type FailedCommand,
  failedCommandOf,
  type IdempotencyClaim,
  isTerminal,
} from '@backhaul/core';
import type { Redis } from 'ioredis';
import { defineCommandScripts } from './command-scripts.js';
import {
  defaultKeyPrefix,
  guard as guardAs,
  storeConnection,
  unavailable as unavailableAs,
} from './redis-connection.js';
import { redisKeys } from './redis-keys.js';

export interface RedisCommandStoreOptions {
  /** A connection to use; the store then leaves it open on `close()`, its owner closes it. */
  redis?: Redis;
  /** Used when `redis` is not given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prepended to every key, so deployments can share one Redis. Default `backhaul:`. */
  keyPrefix?: string;
  /**
   * After every write, wait (Redis `WAIT`) until this many replicas have it, or fail the call
   * with `service-unavailable` after `timeoutMs`. Without it a write acknowledged by the primary
   * can be lost if the primary dies before replicating it.
   */
  waitForReplicas?: { replicas: number; timeoutMs: number };
  /**
   * How long a terminal record (and a dead-letter entry) is kept: the record's key expires
   * (`PEXPIREAT`) this long after it ended. Default 7 days (`defaultRetentionMs` of core).
   * Keep it longer than the server's `idempotencyKeyRetentionMs`, so a replayed key finds its command.
   */
  retentionMs?: number;
}

/** Core's `DeadLetter`, under the name this package exported it first. */
export type { DeadLetter } from '@backhaul/core';

export interface RedisCommandStore extends CommandStore {
  readonly redis: Redis;
  /** The most recent dead letters, newest first. */
  listDeadLetters(limit: number): Promise<DeadLetter[]>;
  /** The most recent failed or expired commands, newest first. */
  listFailures(limit: number): Promise<FailedCommand[]>;
}

export { defaultKeyPrefix, defaultRedisUrl } from './redis-connection.js';

/**
 * A durable `CommandStore` on Redis (docs/redis.md): several server processes share it, and
 * every step of the delivery state machine is a compare-and-set in a Lua script, so exactly one
 * of them applies each step. Semantics mirror `createMemoryCommandStore` in core.
 */
export function createRedisCommandStore(options: RedisCommandStoreOptions = {}): RedisCommandStore {
  const keyPrefix = options.keyPrefix ?? defaultKeyPrefix;
  if (typeof keyPrefix !== 'string') {
    throw new TypeError('createRedisCommandStore: keyPrefix must be a string');
  }
  const replication = options.waitForReplicas;
  if (replication) {
    if (!Number.isInteger(replication.replicas) || replication.replicas < 1) {
      throw new RangeError(
        `createRedisCommandStore: waitForReplicas.replicas must be a whole number >= 1, got ${replication.replicas}`,
      );
    }
    // WAIT with timeout 0 blocks forever, and it blocks the whole shared connection meanwhile.
    if (!Number.isInteger(replication.timeoutMs) || replication.timeoutMs < 1) {
      throw new RangeError(
        `createRedisCommandStore: waitForReplicas.timeoutMs must be a whole number >= 1, got ${replication.timeoutMs}`,
      );
    }
  }

  const retentionMs = options.retentionMs ?? defaultRetentionMs;
  if (!Number.isSafeInteger(retentionMs) || retentionMs < 1) {
    throw new RangeError(
      `createRedisCommandStore: retentionMs must be a whole number >= 1, got ${retentionMs}`,
    );
  }

  const connection = storeConnection(options);
  const { redis } = connection;
  const keys = redisKeys(keyPrefix);
  const scripts = defineCommandScripts(redis);
  const undeliveredHead = connection.scriptKey(keys.undeliveredHead);

  /** Which index scores a record has; '' means "not in that index". */
  const scores = (record: CommandRecord) => ({
    dueScore: !isTerminal(record.state) && record.deadline !== undefined ? String(record.deadline) : '',
    undeliveredScore:
      record.state === 'pending' || record.state === 'dispatched' ? String(record.createdAt) : '',
  });

  const scriptArguments = (record: CommandRecord) => ({
    recordKey: keys.record(record.id),
    dueKey: keys.due,
    undeliveredKey: keys.undelivered(record.gatewayId),
    json: JSON.stringify(record),
    id: record.id,
    version: record.version,
    state: record.state,
    gatewayId: record.gatewayId,
    ...scores(record),
  });

  const awaitReplicas = async () => {
    if (!replication) return;
    const acknowledged = await redis.wait(replication.replicas, replication.timeoutMs);
    if (acknowledged < replication.replicas) {
      throw new BackhaulError(
        'service-unavailable',
        `Only ${acknowledged} of ${replication.replicas} Redis replicas acknowledged the write within ${replication.timeoutMs} ms`,
        { details: { acknowledged, required: replication.replicas } },
      );
    }
  };

  /** Reads records by id in one round trip, skipping ids whose record vanished meanwhile. */
  const load = async (ids: string[]): Promise<CommandRecord[]> => {
    if (ids.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hget(keys.record(id), 'record');
    const replies = (await pipeline.exec()) ?? [];
    const records: CommandRecord[] = [];
    for (const [error, json] of replies) {
      if (error) throw unavailable(error);
      if (typeof json === 'string') records.push(parseRecord(json));
    }
    return records;
  };

  return {
    specificationVersion: 'v1',
    name: 'redis',
    redis,

    async insert(record) {
      // Resolves only once Redis acknowledged the script (and, if configured, the replicas did):
      // the protocol persists a command before sending it (docs/protocol.md §7). How durable an
      // acknowledged write is depends on Redis's AOF settings (docs/redis.md).
      const written = await guard(scripts.insert(scriptArguments(record)));
      if (!written) throw new BackhaulError('invalid-state', `Command ${record.id} already exists`);
      await awaitReplicas();
    },

    async insertClaimed(record, newClaim) {
      const claim: IdempotencyClaim = { ...newClaim, commandId: record.id };
      const outcome = await guard(
        scripts.insertClaimed({
          ...scriptArguments(record),
          claimKey: keys.claim(claim.callerId, claim.key),
          claimJson: JSON.stringify(claim),
          claimExpiresAt: Math.max(1, Math.ceil(claim.expiresAt)),
        }),
      );
      if (typeof outcome === 'string') return JSON.parse(outcome) as IdempotencyClaim;
      if (!outcome) throw new BackhaulError('invalid-state', `Command ${record.id} already exists`);
      await awaitReplicas();
      return undefined;
    },

    async findClaim(callerId, key) {
      const json = await guard(redis.get(keys.claim(callerId, key)));
      return json === null ? undefined : (JSON.parse(json) as IdempotencyClaim);
    },

    async get(id) {
      const json = await guard(redis.hget(keys.record(id), 'record'));
      return json === null ? undefined : parseRecord(json);
    },

    async compareAndSet(next) {
      const failure = failedCommandOf(next);
      const written = await guard(
        scripts.compareAndSet({
          ...scriptArguments(next),
          deadLettersKey: keys.deadLetters,
          failuresKey: keys.failures,
          failureEntry: failure ? JSON.stringify(failure) : '',
          reason: next.reason ?? '',
          at: next.updatedAt,
          undeliveredHead,
          undeliveredTail: keys.undeliveredTail,
          // Counted from the write, not the record's own clock: a record may carry any timestamps.
          forgetAt: isTerminal(next.state) ? String(Date.now() + retentionMs) : '',
          retentionMs,
        }),
      );
      if (written) await awaitReplicas();
      return written;
    },

    async listUndelivered(gatewayId) {
      const ids = await guard(redis.zrange(keys.undelivered(gatewayId), 0, -1));
      const records = await load(ids);
      // The set and the records are read in two steps; a record that moved on in between is
      // no longer undelivered and is left out, as the memory store would.
      return records.filter(
        (r) => r.gatewayId === gatewayId && (r.state === 'pending' || r.state === 'dispatched'),
      );
    },

    async listDue(now, limit) {
      if (!(limit > 0)) return [];
      const ids = await guard(
        redis.zrangebyscore(keys.due, '-inf', String(now), 'LIMIT', 0, Math.floor(limit)),
      );
      const records = await load(ids);
      // Same two-step read: drop what became terminal or got a later deadline meanwhile.
      return records.filter((r) => !isTerminal(r.state) && r.deadline !== undefined && r.deadline <= now);
    },

    async listDeadLetters(limit) {
      if (!(limit > 0)) return [];
      const entries = await guard(redis.xrevrange(keys.deadLetters, '+', '-', 'COUNT', Math.floor(limit)));
      return entries.map(([, fields]) => {
        const entry = fieldsOf(fields);
        return { id: entry.id ?? '', reason: entry.reason ?? '', at: Number(entry.at) };
      });
    },

    async listFailures(limit) {
      if (!(limit > 0)) return [];
      const entries = await guard(redis.xrevrange(keys.failures, '+', '-', 'COUNT', Math.floor(limit)));
      return entries.map(([, fields]) => JSON.parse(fieldsOf(fields).entry ?? '{}') as FailedCommand);
    },

    close: () => connection.close(),
  };
}

function parseRecord(json: string): CommandRecord {
  const record = JSON.parse(json) as CommandRecord;
  // JSON has no `undefined`: restore the key a terminal record carries as `deadline: undefined`.
  record.deadline ??= undefined;
  return record;
}

function fieldsOf(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

const what = 'Redis command store';
const guard = <T>(operation: Promise<T>) => guardAs(what, operation);
const unavailable = (error: unknown) => unavailableAs(what, error);
