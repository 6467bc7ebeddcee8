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
  return new BackhaulError('service-unavailable', `${what}: ${message}`, { cause: error });
}

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
  const redis = options.redis ?? new Redis(options.url ?? defaultRedisUrl);
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
