import type { Redis } from 'ioredis';

/*
 * One upload is one hash: `c:<index>` = "<checksum> <size>" per recorded chunk, `contiguous`,
 * `short` and `highest` (what the §6.2 rules need without reading every chunk), `status` (absent:
 * open), `owner` and `leaseUntil` while a completion is claimed, `result` once completed. Each
 * change is one script, so two instances recording the same index, or claiming the same
 * completion, never both win. Leases are measured on Redis's clock (TIME), not the instances'.
 * Every write pushes the hash's expiry out to the retention.
 */

/** The rules of `judgeChunk` in core, in the same order. */
const recordScript = `
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'open' then return {'closed', status} end
local index = tonumber(ARGV[1])
local stored = redis.call('HGET', KEYS[1], 'c:' .. ARGV[1])
if stored then
  local checksum = string.match(stored, '^(%S+)')
  if checksum == ARGV[2] then return {'duplicate'} end
  return {'conflict', checksum}
end
local contiguous = tonumber(redis.call('HGET', KEYS[1], 'contiguous') or '0')
if index >= contiguous + tonumber(ARGV[5]) then return {'out-of-window', tostring(contiguous)} end
local short = tonumber(ARGV[3]) < tonumber(ARGV[4])
local shortIndex = redis.call('HGET', KEYS[1], 'short')
local highest = tonumber(redis.call('HGET', KEYS[1], 'highest') or '-1')
if short and shortIndex then return {'misplaced-short', 'second-short', shortIndex} end
if short and highest > index then return {'misplaced-short', 'short-not-last', tostring(highest)} end
if (not short) and shortIndex and index > tonumber(shortIndex) then
  return {'misplaced-short', 'after-short', shortIndex}
end
redis.call('HSET', KEYS[1], 'c:' .. ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
if short then redis.call('HSET', KEYS[1], 'short', ARGV[1]) end
if index > highest then redis.call('HSET', KEYS[1], 'highest', ARGV[1]) end
if index == contiguous then
  contiguous = contiguous + 1
  while redis.call('HEXISTS', KEYS[1], 'c:' .. string.format('%d', contiguous)) == 1 do
    contiguous = contiguous + 1
  end
  redis.call('HSET', KEYS[1], 'contiguous', string.format('%d', contiguous))
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {'recorded'}
`;

const nowMs = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;

/** ARGV: owner, leaseMs, retentionMs. */
const claimScript = `
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'completed' then return {'completed', redis.call('HGET', KEYS[1], 'result')} end
if status == 'aborted' then return {'aborted'} end
${nowMs}
if status == 'assembling' then
  local owner = redis.call('HGET', KEYS[1], 'owner')
  local leaseUntil = tonumber(redis.call('HGET', KEYS[1], 'leaseUntil') or '0')
  if owner ~= ARGV[1] and leaseUntil > now then return {'busy', string.format('%d', leaseUntil - now)} end
end
redis.call('HSET', KEYS[1], 'status', 'assembling', 'owner', ARGV[1],
  'leaseUntil', string.format('%d', now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'claimed'}
`;

/** Whether ARGV[1] holds the claim: a lease that ran out holds until another instance claims. */
const holds = `
if redis.call('HGET', KEYS[1], 'status') ~= 'assembling' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
`;

/** ARGV: owner, leaseMs, retentionMs. */
const renewScript = `
${holds}
${nowMs}
redis.call('HSET', KEYS[1], 'leaseUntil', string.format('%d', now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** ARGV: owner, retentionMs. */
const releaseScript = `
${holds}
redis.call('HSET', KEYS[1], 'status', 'open')
redis.call('HDEL', KEYS[1], 'owner', 'leaseUntil')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/** ARGV: owner, result, retentionMs. */
const completeScript = `
${holds}
redis.call('HSET', KEYS[1], 'status', 'completed', 'result', ARGV[2])
redis.call('HDEL', KEYS[1], 'owner', 'leaseUntil')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** ARGV: retentionMs. A completed upload stays completed. */
const abortScript = `
if redis.call('HGET', KEYS[1], 'status') ~= 'completed' then
  redis.call('HSET', KEYS[1], 'status', 'aborted')
  redis.call('HDEL', KEYS[1], 'owner', 'leaseUntil')
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

type Reply = (string | null)[];

export interface UploadLedgerScripts {
  record(key: string, args: (string | number)[]): Promise<Reply>;
  claim(key: string, args: (string | number)[]): Promise<Reply>;
  renew(key: string, args: (string | number)[]): Promise<number>;
  release(key: string, args: (string | number)[]): Promise<number>;
  complete(key: string, args: (string | number)[]): Promise<number>;
  abort(key: string, args: (string | number)[]): Promise<number>;
}

type Scripted = Record<string, (...keysThenArgs: (string | number)[]) => Promise<unknown>>;

const scripts = {
  backhaulRecordChunk: recordScript,
  backhaulClaimCompletion: claimScript,
  backhaulRenewCompletion: renewScript,
  backhaulReleaseCompletion: releaseScript,
  backhaulCompleteUpload: completeScript,
  backhaulAbortUpload: abortScript,
} as const;

/** Registers the scripts on a connection once (EVALSHA, with ioredis falling back to EVAL). */
export function defineUploadLedgerScripts(redis: Redis): UploadLedgerScripts {
  const scripted = redis as unknown as Scripted;
  for (const [name, lua] of Object.entries(scripts)) {
    if (typeof scripted[name] !== 'function') redis.defineCommand(name, { lua, numberOfKeys: 1 });
  }
  const call =
    <T>(name: keyof typeof scripts) =>
    (key: string, args: (string | number)[]): Promise<T> =>
      (scripted[name] as Scripted[string])(key, ...args) as Promise<T>;
  return {
    record: call<Reply>('backhaulRecordChunk'),
    claim: call<Reply>('backhaulClaimCompletion'),
    renew: call<number>('backhaulRenewCompletion'),
    release: call<number>('backhaulReleaseCompletion'),
    complete: call<number>('backhaulCompleteUpload'),
    abort: call<number>('backhaulAbortUpload'),
  };
}
