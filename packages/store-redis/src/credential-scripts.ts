import type { Redis } from 'ioredis';

/*
 * Each change of an enrolment touches the gateway's hash, the set of enrolled gateways and the
 * per-token lookup keys; a script makes it one atomic step, so a request authenticating on another
 * server never sees a token valid in one key and revoked in the other. Token lookup keys exist only
 * for valid tokens: authenticating a request is one GET, with no revocation flag to check.
 */

/**
 * KEYS: enrolled set, enrolment hash, token key. ARGV: gatewayId, createdAt, tokenId, sha256, lookup JSON.
 * Returns 1 when written, 0 when the gateway is enrolled, -1 when the token hash is in use.
 */
const enrolScript = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
redis.call('HSET', KEYS[2], 'createdAt', ARGV[2], 'sha:' .. ARGV[3], ARGV[4], 'created:' .. ARGV[3], ARGV[2])
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

export interface CredentialScripts {
  enrol(keys: [string, string, string], args: (string | number)[]): Promise<number>;
  addToken(keys: [string, string], args: (string | number)[]): Promise<number>;
  revoke(keys: [string], args: (string | number)[]): Promise<number>;
  remove(keys: [string, string], args: (string | number)[]): Promise<number>;
}

type Scripted = Record<string, (...keysThenArgs: (string | number)[]) => Promise<number>>;

const scripts = {
  backhaulEnrolGateway: { lua: enrolScript, numberOfKeys: 3 },
  backhaulAddGatewayToken: { lua: addTokenScript, numberOfKeys: 2 },
  backhaulRevokeGatewayToken: { lua: revokeScript, numberOfKeys: 1 },
  backhaulRemoveGateway: { lua: removeScript, numberOfKeys: 2 },
} as const;

/** Registers the scripts on a connection once (EVALSHA, with ioredis falling back to EVAL). */
export function defineCredentialScripts(redis: Redis): CredentialScripts {
  const scripted = redis as unknown as Scripted;
  for (const [name, definition] of Object.entries(scripts)) {
    if (typeof scripted[name] !== 'function') redis.defineCommand(name, definition);
  }
  const call =
    (name: keyof typeof scripts) =>
    (keys: string[], args: (string | number)[]): Promise<number> =>
      (scripted[name] as Scripted[string])(...keys, ...args);
  return {
    enrol: call('backhaulEnrolGateway'),
    addToken: call('backhaulAddGatewayToken'),
    revoke: call('backhaulRevokeGatewayToken'),
    remove: call('backhaulRemoveGateway'),
  };
}
