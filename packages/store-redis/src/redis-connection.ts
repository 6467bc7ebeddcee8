import { once } from 'node:events';
import { BackhaulError } from '@backhaul/core';
import { Redis } from 'ioredis';

/**
 * What the command store and the credential store do alike with their connection: turn Redis
 * failures into typed errors, and close a connection they own without losing queued replies.
 */

/** Redis failures reach the caller typed and retryable, like every other backing service's. */
export async function guard<T>(what: string, operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    throw unavailable(what, error);
  }
}

export function unavailable(what: string, error: unknown): BackhaulError {
  if (BackhaulError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new BackhaulError('service-unavailable', `${what}: ${message}`, {
    cause: error,
    retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS,
  });
}

/** What a caller is told to wait (Retry-After) when Redis cannot be reached. */
const UNAVAILABLE_RETRY_AFTER_MS = 1000;

/**
 * QUIT lets queued replies arrive first; a connection that never came up is just dropped.
 * Resolving on 'end' means the socket is gone once this resolves, not merely asked to go.
 */
export async function closeConnection(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    const ended = once(redis, 'end');
    await redis.quit();
    await ended;
  } else if (redis.status !== 'end') {
    redis.disconnect();
  }
}

export const defaultRedisUrl = 'redis://127.0.0.1:6379';
export const defaultKeyPrefix = 'backhaul:';

/** A store's connection: the one it was given (its owner closes it) or its own (closed by the store). */
export interface StoreConnection {
  readonly redis: Redis;
  /** A key a script builds itself: ioredis prefixes the keys it is given, not those, so the connection's own prefix is added here. */
  scriptKey(key: string): string;
  /** Closes the connection if the store opened it; idempotent. */
  close(): Promise<void>;
}

export function storeConnection(options: { redis?: Redis; url?: string }): StoreConnection {
  const owned = options.redis === undefined;
  // While Redis is unreachable, a call fails after two reconnection attempts (a fraction of a
  // second) rather than ioredis's default twenty (about ten seconds): a caller then gets a prompt
  // 503 with Retry-After, not a request that hangs. Writes are never queued past that.
  const redis = options.redis ?? new Redis(options.url ?? defaultRedisUrl, { maxRetriesPerRequest: 1 });
  // Each call that fails reports it (service-unavailable); the connection itself reconnects on
  // its own, so its error events would only be ioredis's "Unhandled error event" noise.
  if (owned) redis.on('error', () => undefined);
  let closed = false;
  return {
    redis,
    scriptKey: (key) => `${redis.options.keyPrefix ?? ''}${key}`,
    async close() {
      if (closed) return;
      closed = true;
      if (owned) await closeConnection(redis);
    },
  };
}
