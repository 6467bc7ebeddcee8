import {
  type ActiveGatewayToken,
  BackhaulError,
  type CallerEnrolment,
  type CallerRole,
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
  const callerHead = connection.scriptKey(keys.callerHead);

  const gatewayLookup = (gatewayId: string, tokenId: string) =>
    JSON.stringify({ gatewayId, tokenId } satisfies ActiveGatewayToken);
  const callerLookup = (callerId: string, tokenId: string) => JSON.stringify({ callerId, tokenId });

  const read = async (gatewayId: string): Promise<GatewayEnrolment | undefined> => {
    const fields = await guard(redis.hgetall(keys.enrolment(gatewayId)));
    if (fields.createdAt === undefined) return undefined;
    return { gatewayId, createdAt: Number(fields.createdAt), tokens: parseTokens(fields) };
  };
  const readCaller = async (callerId: string): Promise<CallerEnrolment | undefined> =>
    parseCaller(callerId, await guard(redis.hgetall(keys.caller(callerId))));

  const tokenInUse = () => new BackhaulError('conflict', 'This token ID or token hash is already in use');

  /**
   * The operations gateways and callers share, on either's keys: the same scripts write both, so
   * enrolment, rotation, revocation and removal follow one set of rules.
   */
  const book = (
    label: string,
    setKey: string,
    recordKey: (id: string) => string,
    lookup: typeof gatewayLookup,
  ) => ({
    async enrol(id: string, token: GatewayTokenRecord, extra: string[] = []) {
      const written = await guard(
        scripts.enrol(
          [setKey, recordKey(id), keys.token(token.sha256)],
          [id, token.createdAt, token.id, token.sha256, lookup(id, token.id), ...extra],
        ),
      );
      if (written === 0) throw new BackhaulError('conflict', `${label} '${id}' is already enrolled`);
      if (written === -1) throw tokenInUse();
    },
    async addToken(id: string, token: GatewayTokenRecord) {
      const written = await guard(
        scripts.addToken(
          [recordKey(id), keys.token(token.sha256)],
          [token.id, token.sha256, token.createdAt, lookup(id, token.id)],
        ),
      );
      if (written === 0) throw new BackhaulError('not-found', `${label} '${id}' is not enrolled`);
      if (written === -1) throw tokenInUse();
    },
    async revoke(
      id: string,
      tokenId: string,
      now: number,
      tokensOf: (id: string) => Promise<GatewayTokenRecord[] | undefined>,
    ) {
      const outcome = await guard(scripts.revoke([recordKey(id)], [tokenId, now, tokenHead]));
      if (outcome === -1) throw new BackhaulError('not-found', `${label} '${id}' is not enrolled`);
      const token = outcome === 0 ? undefined : (await tokensOf(id))?.find((t) => t.id === tokenId);
      if (!token) throw new BackhaulError('not-found', `${label} '${id}' has no token '${tokenId}'`);
      return token;
    },
    async remove(id: string) {
      return (await guard(scripts.remove([setKey, recordKey(id)], [id, tokenHead]))) === 1;
    },
    async list<T>(parse: (id: string, fields: Record<string, string>) => T | undefined): Promise<T[]> {
      const ids = (await guard(redis.smembers(setKey))).sort();
      if (ids.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hgetall(recordKey(id));
      const replies = (await guard(pipeline.exec())) ?? [];
      const found: T[] = [];
      replies.forEach(([error, fields], index) => {
        if (error) throw guardError(error);
        // One removed between the two reads is left out.
        const parsed = parse(ids[index]!, fields as Record<string, string>);
        if (parsed) found.push(parsed);
      });
      return found;
    },
  });
  const gateways = book('Gateway', keys.enrolled, keys.enrolment, gatewayLookup);
  const callers = book('Caller', keys.callers, keys.caller, callerLookup);

  return {
    specificationVersion: 'v1',
    name: 'redis',
    redis,

    enrol: (gatewayId, token) => gateways.enrol(gatewayId, token),
    addToken: (gatewayId, token) => gateways.addToken(gatewayId, token),
    revokeToken: (gatewayId, tokenId, now) =>
      gateways.revoke(gatewayId, tokenId, now, async (id) => (await read(id))?.tokens),
    remove: (gatewayId) => gateways.remove(gatewayId),
    get: read,
    list: () =>
      gateways.list((gatewayId, fields) =>
        fields.createdAt === undefined
          ? undefined
          : { gatewayId, createdAt: Number(fields.createdAt), tokens: parseTokens(fields) },
      ),

    async findActiveToken(sha256) {
      const json = await guard(redis.get(keys.token(sha256)));
      if (json === null) return undefined;
      const { gatewayId, tokenId } = JSON.parse(json) as Partial<ActiveGatewayToken>;
      // A caller's token shares the key space (one hash, one identity) but is no gateway's.
      if (typeof gatewayId !== 'string' || typeof tokenId !== 'string') return undefined;
      return { gatewayId, tokenId };
    },

    enrolCaller: (caller, token) =>
      callers.enrol(caller.callerId, token, [
        'role',
        caller.role,
        ...(caller.gateways ? ['gateways', JSON.stringify(caller.gateways)] : []),
      ]),
    async restrictCaller(callerId, allowed) {
      const changed = await guard(
        scripts.restrict([keys.caller(callerId)], [allowed === null ? '' : JSON.stringify(allowed)]),
      );
      const caller = changed === 1 ? await readCaller(callerId) : undefined;
      if (!caller) throw new BackhaulError('not-found', `Caller '${callerId}' is not enrolled`);
      return caller;
    },
    addCallerToken: (callerId, token) => callers.addToken(callerId, token),
    revokeCallerToken: (callerId, tokenId, now) =>
      callers.revoke(callerId, tokenId, now, async (id) => (await readCaller(id))?.tokens),
    removeCaller: (callerId) => callers.remove(callerId),
    getCaller: readCaller,
    listCallers: () => callers.list(parseCaller),
    async findActiveCallerToken(sha256) {
      const found = await guard(scripts.findCaller([keys.token(sha256)], [callerHead]));
      if (!found) return undefined;
      const [callerId, tokenId, role, gatewaysJson] = found;
      return {
        callerId,
        tokenId,
        role: role as CallerRole,
        ...(gatewaysJson ? { gateways: JSON.parse(gatewaysJson) as string[] } : {}),
      };
    },

    close: () => connection.close(),
  };
}

/** The tokens in an enrolment hash's flat fields (`sha:`, `created:`, `revoked:` per token ID). */
function parseTokens(fields: Record<string, string>): GatewayTokenRecord[] {
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
  return tokens;
}

/** Rebuilds a caller from its hash; undefined when the hash is empty. */
function parseCaller(callerId: string, fields: Record<string, string>): CallerEnrolment | undefined {
  if (fields.createdAt === undefined || fields.role === undefined) return undefined;
  return {
    callerId,
    role: fields.role as CallerRole,
    ...(fields.gateways === undefined ? {} : { gateways: JSON.parse(fields.gateways) as string[] }),
    createdAt: Number(fields.createdAt),
    tokens: parseTokens(fields),
  };
}

const what = 'Redis credential store';
const guard = <T>(operation: Promise<T>) => guardAs(what, operation);
const guardError = (error: unknown) => unavailable(what, error);
