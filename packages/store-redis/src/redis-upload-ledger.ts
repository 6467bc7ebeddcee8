import {
  BackhaulError,
  type ChunkEntry,
  type ChunkOutcome,
  type CompletionClaim,
  type UploadLedger,
  type UploadRecord,
  type UploadStatus,
} from '@backhaul/core';
import type { Redis } from 'ioredis';
import { defaultKeyPrefix, guard as guardAs, storeConnection } from './redis-connection.js';
import { defineUploadLedgerScripts } from './upload-ledger-scripts.js';

export interface RedisUploadLedgerOptions {
  /** A connection to use (e.g. the command store's `redis`); the ledger then leaves it open on `close()`. */
  redis?: Redis;
  /** Used when `redis` is not given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prepended to every key; use the command store's prefix so one prefix is one deployment. Default `backhaul:`. */
  keyPrefix?: string;
  /** How long an upload's record lives after its last change. Default 7 days. */
  retentionMs?: number;
}

export interface RedisUploadLedger extends UploadLedger {
  readonly redis: Redis;
}

const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60_000;

/**
 * Chunk receipts and completion claims of file uploads on Redis (docs/redis.md, docs/cluster.md):
 * every server on the same Redis and prefix takes chunks and completions of the same files. One
 * hash per upload (`<prefix>upload:<id>`), changed only by Lua scripts, expiring `retentionMs`
 * after its last change. Semantics mirror `createMemoryUploadLedger` in core.
 */
export function createRedisUploadLedger(options: RedisUploadLedgerOptions = {}): RedisUploadLedger {
  const keyPrefix = options.keyPrefix ?? defaultKeyPrefix;
  if (typeof keyPrefix !== 'string')
    throw new TypeError('createRedisUploadLedger: keyPrefix must be a string');
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  if (!Number.isSafeInteger(retentionMs) || retentionMs <= 0)
    throw new TypeError('createRedisUploadLedger: retentionMs must be a positive whole number');
  const connection = storeConnection(options);
  const { redis } = connection;
  const scripts = defineUploadLedgerScripts(redis);
  const key = (uploadId: string) => `${keyPrefix}upload:${uploadId}`;

  const read = async (uploadId: string): Promise<UploadRecord> =>
    parseUpload(await guard(redis.hgetall(key(uploadId))));

  return {
    specificationVersion: 'v1',
    name: 'redis',
    redis,

    async recordChunk(uploadId, chunk, rules) {
      const reply = await guard(
        scripts.record(key(uploadId), [
          chunk.index,
          chunk.checksum,
          chunk.size,
          rules.chunkSize,
          rules.chunkWindow,
          retentionMs,
        ]),
      );
      return parseOutcome(reply);
    },

    read,

    async claimCompletion(uploadId, owner, leaseMs): Promise<CompletionClaim> {
      const [kind, value] = await guard(scripts.claim(key(uploadId), [owner, leaseMs, retentionMs]));
      if (kind === 'claimed') return { kind };
      if (kind === 'busy') return { kind, retryAfterMs: Number(value) };
      if (kind === 'completed') return { kind, result: value ?? '' };
      return { kind: 'aborted' };
    },

    async renewClaim(uploadId, owner, leaseMs) {
      return (await guard(scripts.renew(key(uploadId), [owner, leaseMs, retentionMs]))) === 1;
    },

    async releaseClaim(uploadId, owner) {
      await guard(scripts.release(key(uploadId), [owner, retentionMs]));
    },

    async complete(uploadId, owner, result) {
      return (await guard(scripts.complete(key(uploadId), [owner, result, retentionMs]))) === 1;
    },

    async abort(uploadId) {
      await guard(scripts.abort(key(uploadId), [retentionMs]));
      return read(uploadId);
    },

    close: () => connection.close(),
  };
}

function parseOutcome(reply: (string | null)[]): ChunkOutcome {
  const [kind, first, second] = reply;
  switch (kind) {
    case 'recorded':
    case 'duplicate':
      return { kind };
    case 'conflict':
      return { kind, stored: first ?? '' };
    case 'out-of-window':
      return { kind, contiguous: Number(first) };
    case 'misplaced-short':
      return {
        kind,
        reason: first as 'second-short' | 'short-not-last' | 'after-short',
        other: Number(second),
      };
    case 'closed':
      return { kind, status: first as Exclude<UploadStatus, 'open'> };
    default:
      throw new BackhaulError('internal', `The upload ledger script answered ${String(kind)}`);
  }
}

/** Rebuilds an upload from its hash's flat fields; an empty hash is an open upload with no chunks. */
function parseUpload(fields: Record<string, string>): UploadRecord {
  const chunks = new Map<number, ChunkEntry>();
  for (const [field, value] of Object.entries(fields)) {
    if (!field.startsWith('c:')) continue;
    const index = Number(field.slice(2));
    const [checksum = '', size = '0'] = value.split(' ');
    chunks.set(index, { index, checksum, size: Number(size) });
  }
  return {
    status: (fields.status as UploadStatus | undefined) ?? 'open',
    contiguous: Number(fields.contiguous ?? 0),
    chunks,
    ...(fields.result === undefined ? {} : { result: fields.result }),
  };
}

const what = 'Redis upload ledger';
const guard = <T>(operation: Promise<T>) => guardAs(what, operation);
