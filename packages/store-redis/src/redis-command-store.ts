import { once } from 'node:events';
import { BackhaulError, type CommandRecord, type CommandStore, isTerminal } from '@backhaul/core';
import { Redis } from 'ioredis';
import { defineCommandScripts } from './command-scripts.js';
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
}

/** One dead-lettered command, as the operator reads it. */
export interface DeadLetter {
  id: string;
  reason: string;
  /** Epoch ms of the transition (the record's `updatedAt`). */
  at: number;
}

export interface RedisCommandStore extends CommandStore {
  readonly redis: Redis;
  /** The most recent dead letters, newest first. */
  listDeadLetters(limit: number): Promise<DeadLetter[]>;
}

export const defaultRedisUrl = 'redis://127.0.0.1:6379';
export const defaultKeyPrefix = 'backhaul:';

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

  const ownsConnection = options.redis === undefined;
  // While Redis is unreachable, a call fails after two reconnection attempts (a fraction of a
  // second) rather than ioredis's default twenty (about ten seconds): a caller then gets a prompt
  // 503 with Retry-After, not a request that hangs. Writes are never queued past that.
  const redis = options.redis ?? new Redis(options.url ?? defaultRedisUrl, { maxRetriesPerRequest: 1 });
  // Each call that fails reports it (service-unavailable); the connection itself reconnects on
  // its own, so its error events would only be ioredis's "Unhandled error event" noise.
  if (ownsConnection) redis.on('error', () => undefined);
  const keys = redisKeys(keyPrefix);
  const scripts = defineCommandScripts(redis);
  // ioredis prefixes the keys it is given but not a key a script builds itself, so that one
  // gets the connection's own prefix (if any) here.
  const undeliveredHead = `${redis.options.keyPrefix ?? ''}${keys.undeliveredHead}`;
  let closed = false;

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

    async get(id) {
      const json = await guard(redis.hget(keys.record(id), 'record'));
      return json === null ? undefined : parseRecord(json);
    },

    async compareAndSet(next) {
      const written = await guard(
        scripts.compareAndSet({
          ...scriptArguments(next),
          deadLettersKey: keys.deadLetters,
          reason: next.reason ?? '',
          at: next.updatedAt,
          undeliveredHead,
          undeliveredTail: keys.undeliveredTail,
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

    async close() {
      if (closed || !ownsConnection) {
        closed = true;
        return;
      }
      closed = true;
      // QUIT lets queued replies arrive first; a connection that never came up is just dropped.
      // Resolving on 'end' means the socket is gone once close() resolves, not merely asked to go.
      if (redis.status === 'ready') {
        const ended = once(redis, 'end');
        await redis.quit();
        await ended;
      } else if (redis.status !== 'end') {
        redis.disconnect();
      }
    },
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

/** What a caller is told to wait (Retry-After) when Redis cannot be reached. */
const UNAVAILABLE_RETRY_AFTER_MS = 1000;

/** Redis failures reach the caller typed and retryable, like every other backing service's. */
async function guard<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    throw unavailable(error);
  }
}

function unavailable(error: unknown): BackhaulError {
  if (BackhaulError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new BackhaulError('service-unavailable', `Redis command store: ${message}`, {
    cause: error,
    retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS,
  });
}
