import {
  type ActiveGatewayToken,
  BackhaulError,
  type CredentialStore,
  type GatewayEnrolment,
  type GatewayTokenRecord,
} from '@backhaul/core';
import type { Redis } from 'ioredis';
import { credentialKeys } from './credential-keys.js';
import { defineCredentialScripts } from './credential-scripts.js';
import { defaultKeyPrefix, guard as guardAs, storeConnection, unavailable } from './redis-connection.js';

export interface RedisCredentialStoreOptions {
  /** A connection to use (e.g. the command store's `redis`); the store then leaves it open on `close()`. */
  redis?: Redis;
  /** Used when `redis` is not given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prepended to every key; use the command store's prefix so one prefix is one deployment. Default `backhaul:`. */
  keyPrefix?: string;
}

export interface RedisCredentialStore extends CredentialStore {
  readonly redis: Redis;
}

/**
 * Gateway enrolments on Redis (docs/redis.md): every server on the same Redis and prefix sees the
 * same gateways and tokens, and a revocation through any of them stops the token on all at the
 * next request. Only SHA-256 hashes of tokens are written. Semantics mirror
 * `createMemoryCredentialStore` in core.
 */
export function createRedisCredentialStore(options: RedisCredentialStoreOptions = {}): RedisCredentialStore {
  const keyPrefix = options.keyPrefix ?? defaultKeyPrefix;
  if (typeof keyPrefix !== 'string')
    throw new TypeError('createRedisCredentialStore: keyPrefix must be a string');
  const connection = storeConnection(options);
  const { redis } = connection;
  const keys = credentialKeys(keyPrefix);
  const scripts = defineCredentialScripts(redis);
  const tokenHead = connection.scriptKey(keys.tokenHead);

  const lookup = (gatewayId: string, tokenId: string) =>
    JSON.stringify({ gatewayId, tokenId } satisfies ActiveGatewayToken);

  const read = async (gatewayId: string): Promise<GatewayEnrolment | undefined> =>
    parseEnrolment(gatewayId, await guard(redis.hgetall(keys.enrolment(gatewayId))));

  const tokenInUse = () => new BackhaulError('conflict', 'This token ID or token hash is already in use');

  return {
    specificationVersion: 'v1',
    name: 'redis',
    redis,

    async enrol(gatewayId, token) {
      const written = await guard(
        scripts.enrol(
          [keys.enrolled, keys.enrolment(gatewayId), keys.token(token.sha256)],
          [gatewayId, token.createdAt, token.id, token.sha256, lookup(gatewayId, token.id)],
        ),
      );
      if (written === 0) throw new BackhaulError('conflict', `Gateway '${gatewayId}' is already enrolled`);
      if (written === -1) throw tokenInUse();
    },

    async addToken(gatewayId, token) {
      const written = await guard(
        scripts.addToken(
          [keys.enrolment(gatewayId), keys.token(token.sha256)],
          [token.id, token.sha256, token.createdAt, lookup(gatewayId, token.id)],
        ),
      );
      if (written === 0) throw new BackhaulError('not-found', `Gateway '${gatewayId}' is not enrolled`);
      if (written === -1) throw tokenInUse();
    },

    async revokeToken(gatewayId, tokenId, now) {
      const outcome = await guard(scripts.revoke([keys.enrolment(gatewayId)], [tokenId, now, tokenHead]));
      if (outcome === -1) throw new BackhaulError('not-found', `Gateway '${gatewayId}' is not enrolled`);
      const token = outcome === 0 ? undefined : (await read(gatewayId))?.tokens.find((t) => t.id === tokenId);
      if (!token) throw new BackhaulError('not-found', `Gateway '${gatewayId}' has no token '${tokenId}'`);
      return token;
    },

    async remove(gatewayId) {
      const removed = await guard(
        scripts.remove([keys.enrolled, keys.enrolment(gatewayId)], [gatewayId, tokenHead]),
      );
      return removed === 1;
    },

    get: read,

    async list() {
      const ids = (await guard(redis.smembers(keys.enrolled))).sort();
      if (ids.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hgetall(keys.enrolment(id));
      const replies = (await guard(pipeline.exec())) ?? [];
      const enrolments: GatewayEnrolment[] = [];
      replies.forEach(([error, fields], index) => {
        if (error) throw guardError(error);
        // A gateway removed between the two reads is left out.
        const enrolment = parseEnrolment(ids[index]!, fields as Record<string, string>);
        if (enrolment) enrolments.push(enrolment);
      });
      return enrolments;
    },

    async findActiveToken(sha256) {
      const json = await guard(redis.get(keys.token(sha256)));
      if (json === null) return undefined;
      const { gatewayId, tokenId } = JSON.parse(json) as ActiveGatewayToken;
      return { gatewayId, tokenId };
    },

    close: () => connection.close(),
  };
}

/** Rebuilds an enrolment from its hash's flat fields; undefined when the hash is empty. */
function parseEnrolment(gatewayId: string, fields: Record<string, string>): GatewayEnrolment | undefined {
  if (fields.createdAt === undefined) return undefined;
  const tokens: GatewayTokenRecord[] = [];
  for (const [field, sha256] of Object.entries(fields)) {
    if (!field.startsWith('sha:')) continue;
    const id = field.slice(4);
    const revoked = fields[`revoked:${id}`];
    tokens.push({
      id,
      sha256,
      createdAt: Number(fields[`created:${id}`]),
      ...(revoked === undefined ? {} : { revokedAt: Number(revoked) }),
    });
  }
  // Hash fields have no order; tokens are listed oldest first, ties by ID.
  tokens.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  return { gatewayId, createdAt: Number(fields.createdAt), tokens };
}

const what = 'Redis credential store';
const guard = <T>(operation: Promise<T>) => guardAs(what, operation);
const guardError = (error: unknown) => unavailable(what, error);
