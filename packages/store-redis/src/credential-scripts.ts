import type { Redis } from 'ioredis';

/*
 * Each change of an enrolment touches the gateway's hash, the set of enrolled gateways and the
 * per-token lookup keys; a script makes it one atomic step, so a request authenticating on another
 * server never sees a token valid in one key and revoked in the other. Token lookup keys exist only
 * for valid tokens: authenticating a request is one GET, with no revocation flag to check.
 */

/**
 * KEYS: enrolled set, enrolment hash, token key. ARGV: id, createdAt, tokenId, sha256, lookup JSON,
 * then field/value pairs more for the hash (a caller's role and gateways).
 * Returns 1 when written, 0 when the ID is enrolled, -1 when the token hash is in use.
 * Gateways and callers use the same scripts on their own keys (docs/redis.md).
 */
const enrolScript = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
redis.call('HSET', KEYS[2], 'createdAt', ARGV[2], 'sha:' .. ARGV[3], ARGV[4], 'created:' .. ARGV[3], ARGV[2])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], ARGV[5])
return 1
`;

/**
 * KEYS: enrolment hash, token key. ARGV: tokenId, sha256, createdAt, lookup JSON.
 * Returns 1 when written, 0 when the gateway is not enrolled, -1 when the token ID or hash is in use.
 */
const addTokenScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'sha:' .. ARGV[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('HSET', KEYS[1], 'sha:' .. ARGV[1], ARGV[2], 'created:' .. ARGV[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
return 1
`;

/**
 * KEYS: enrolment hash. ARGV: tokenId, revokedAt, token key head.
 * Returns 1 when revoked now, 2 when it was revoked before (nothing changes), 0 for an unknown
 * token, -1 for an unknown gateway.
 * The token key is built here from the stored hash (as the command store's script builds a
 * gateway's key; a hash tag in the prefix keeps it in the same cluster slot).
 */
const revokeScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local sha = redis.call('HGET', KEYS[1], 'sha:' .. ARGV[1])
if not sha then return 0 end
if redis.call('HEXISTS', KEYS[1], 'revoked:' .. ARGV[1]) == 1 then return 2 end
redis.call('HSET', KEYS[1], 'revoked:' .. ARGV[1], ARGV[2])
redis.call('DEL', ARGV[3] .. sha)
return 1
`;

/**
 * KEYS: enrolled set, enrolment hash. ARGV: gatewayId, token key head.
 * Returns 1 when removed, 0 when not enrolled. Reading the token hashes inside the script means a
 * token added a moment before cannot outlive its gateway.
 */
const removeScript = `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 4) == 'sha:' then redis.call('DEL', ARGV[2] .. fields[i + 1]) end
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[1], ARGV[1])
return 1
`;

/**
 * KEYS: caller hash. ARGV: gateways JSON, or '' for every gateway.
 * Returns 1 when changed, 0 when the caller is not enrolled (a removed caller is not recreated).
 */
const restrictScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'gateways') else redis.call('HSET', KEYS[1], 'gateways', ARGV[1]) end
return 1
`;

/**
 * KEYS: token key. ARGV: caller key head. The lookup of a caller token, in one round trip: the
 * token's caller, then that caller's role and gateways (which may change without a new token).
 * Returns nil, or {callerId, tokenId, role, gateways JSON or ''}.
 */
const findCallerScript = `
local lookup = redis.call('GET', KEYS[1])
if not lookup then return false end
local ok, entry = pcall(cjson.decode, lookup)
if not ok or type(entry) ~= 'table' or type(entry.callerId) ~= 'string' then return false end
local fields = redis.call('HMGET', ARGV[1] .. entry.callerId, 'role', 'gateways')
if not fields[1] then return false end
return {entry.callerId, entry.tokenId, fields[1], fields[2] or ''}
`;

export interface CredentialScripts {
  enrol(keys: [string, string, string], args: (string | number)[]): Promise<number>;
  addToken(keys: [string, string], args: (string | number)[]): Promise<number>;
  revoke(keys: [string], args: (string | number)[]): Promise<number>;
  remove(keys: [string, string], args: (string | number)[]): Promise<number>;
  restrict(keys: [string], args: string[]): Promise<number>;
  findCaller(keys: [string], args: string[]): Promise<[string, string, string, string] | null>;
}

type Scripted = Record<string, (...keysThenArgs: (string | number)[]) => Promise<unknown>>;

const scripts = {
  backhaulEnrolGateway: { lua: enrolScript, numberOfKeys: 3 },
  backhaulAddGatewayToken: { lua: addTokenScript, numberOfKeys: 2 },
  backhaulRevokeGatewayToken: { lua: revokeScript, numberOfKeys: 1 },
  backhaulRemoveGateway: { lua: removeScript, numberOfKeys: 2 },
  backhaulRestrictCaller: { lua: restrictScript, numberOfKeys: 1 },
  backhaulFindCaller: { lua: findCallerScript, numberOfKeys: 1 },
} as const;

/** Registers the scripts on a connection once (EVALSHA, with ioredis falling back to EVAL). */
export function defineCredentialScripts(redis: Redis): CredentialScripts {
  const scripted = redis as unknown as Scripted;
  for (const [name, definition] of Object.entries(scripts)) {
    if (typeof scripted[name] !== 'function') redis.defineCommand(name, definition);
  }
  const call =
    <T = number>(name: keyof typeof scripts) =>
    (keys: string[], args: (string | number)[]): Promise<T> =>
      (scripted[name] as Scripted[string])(...keys, ...args) as Promise<T>;
  return {
    enrol: call('backhaulEnrolGateway'),
    addToken: call('backhaulAddGatewayToken'),
    revoke: call('backhaulRevokeGatewayToken'),
    remove: call('backhaulRemoveGateway'),
    restrict: call('backhaulRestrictCaller'),
    findCaller: call<[string, string, string, string] | null>('backhaulFindCaller'),
  };
}
