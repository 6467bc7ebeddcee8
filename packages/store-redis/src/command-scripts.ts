import type { Redis } from 'ioredis';

/*
 * Why Lua compare-and-set rather than Redis Streams + XAUTOCLAIM:
 *
 * A stream with a consumer group would give "claim a message whose consumer went quiet", which
 * is only one edge of the delivery state machine (dispatched → pending on an ack timeout). Every
 * other edge (ack, progress, complete, fail, expire, dead-letter) must also be applied once and
 * only on top of the state it was computed from, and the stream would have to be kept in step
 * with the record by separate writes that can interleave with another server's. So the whole
 * machine runs as compare-and-set on one record: `transition()` computes the next record in
 * TypeScript, and a script writes it only if the stored version is still `next.version - 1`,
 * updating every index in the same atomic step. A redelivery is claimed atomically for the
 * same reason a completion is: two servers that both see version N past its ack deadline both
 * compute version N+1, and exactly one compare-and-set wins; the loser reloads and finds
 * nothing left to do.
 *
 * The scripts only apply decisions made in TypeScript (which indexes a state belongs to is
 * passed in as scores, '' for "not in this index"), so the rules live in one place, core.
 */

/**
 * KEYS: record hash, due set, the record's gateway's undelivered set.
 * ARGV: record JSON, id, version, state, gatewayId, due score or '', undelivered score or ''.
 * Returns 1 when written, 0 when the id exists (nothing is touched then).
 */
/** Writes a new record and its index entries: KEYS 1-3 and ARGV 1-7 as for `insertScript`. */
const writeNewRecord = `
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'version', ARGV[3], 'state', ARGV[4], 'gatewayId', ARGV[5])
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[2]) else redis.call('ZREM', KEYS[2], ARGV[2]) end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[3], ARGV[7], ARGV[2]) else redis.call('ZREM', KEYS[3], ARGV[2]) end
`;

const insertScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
${writeNewRecord}
return 1
`;

/**
 * KEYS: as `insertScript`, then the idempotency claim key.
 * ARGV: as `insertScript`, then the claim JSON and its expiry (epoch ms, for PXAT).
 * Returns the stored claim JSON when the key is claimed already (nothing is touched then), 1 when
 * written, 0 when the id exists. Checking the claim and writing both in one script is what makes
 * two concurrent first requests with one key create one command, on any number of servers.
 */
const insertClaimedScript = `
local claimed = redis.call('GET', KEYS[4])
if claimed then return claimed end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
${writeNewRecord}
redis.call('SET', KEYS[4], ARGV[8], 'PXAT', ARGV[9])
return 1
`;

/**
 * KEYS: record hash, due set, the next record's gateway's undelivered set, dead-letter stream,
 *       failures stream.
 * ARGV: next record JSON, id, next version, next state, next gatewayId, due score or '',
 *       undelivered score or '', dead-letter reason, dead-letter time (ms),
 *       undelivered key head and tail (to leave a previous gateway's set), when a terminal
 *       record is forgotten (epoch ms, for PEXPIREAT) or '' while it is not terminal, the
 *       retention in ms (stream entries older than the newest minus it are trimmed), and the
 *       failure entry (JSON) when the next state is failed or expired, else ''.
 * Returns 1 when written, 0 when the record is missing or its stored version is not
 * next.version - 1 (nothing is touched then).
 */
const compareAndSetScript = `
local stored = redis.call('HMGET', KEYS[1], 'version', 'state', 'gatewayId')
if not stored[1] or tonumber(stored[1]) ~= tonumber(ARGV[3]) - 1 then return 0 end
-- Entering dead-lettered: the dead-letter entry is written first, in this same atomic step, so
-- no reader can see the command gone from the pending set without its dead-letter entry.
if ARGV[4] == 'dead-lettered' and stored[2] ~= 'dead-lettered' then
  -- Entry IDs are Redis's clock in ms: MINID drops the entries older than the retention, and
  -- the stream itself goes once its newest entry is that old.
  local added = redis.call('XADD', KEYS[4], '*', 'id', ARGV[2], 'reason', ARGV[8], 'at', ARGV[9])
  local newest = tonumber(string.match(added, '^(%d+)'))
  redis.call('XTRIM', KEYS[4], 'MINID', '~', newest - tonumber(ARGV[13]))
  redis.call('PEXPIREAT', KEYS[4], newest + tonumber(ARGV[13]))
end
-- Entering failed or expired: an entry on the failures stream, so every server lists recent
-- failures. Bounded by count as well: a failure storm must not grow it for the whole retention.
if ARGV[14] ~= '' and stored[2] ~= ARGV[4] then
  local added = redis.call('XADD', KEYS[5], 'MAXLEN', '~', '10000', '*', 'entry', ARGV[14])
  local newest = tonumber(string.match(added, '^(%d+)'))
  redis.call('XTRIM', KEYS[5], 'MINID', '~', newest - tonumber(ARGV[13]))
  redis.call('PEXPIREAT', KEYS[5], newest + tonumber(ARGV[13]))
end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'version', ARGV[3], 'state', ARGV[4], 'gatewayId', ARGV[5])
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[2]) else redis.call('ZREM', KEYS[2], ARGV[2]) end
-- A write that moves a record to another gateway must leave the old gateway's set. Its key is
-- built here because only the stored record knows the old gateway (standalone Redis allows it;
-- on a cluster the shared hash tag of the prefix keeps it in the same slot).
if stored[3] and stored[3] ~= ARGV[5] then
  redis.call('ZREM', ARGV[10] .. stored[3] .. ARGV[11], ARGV[2])
end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[3], ARGV[7], ARGV[2]) else redis.call('ZREM', KEYS[3], ARGV[2]) end
-- A terminal record is in no index any more: its own expiry is all that forgets it.
if ARGV[12] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[12]) end
return 1
`;

export interface InsertArguments {
  recordKey: string;
  dueKey: string;
  undeliveredKey: string;
  json: string;
  id: string;
  version: number;
  state: string;
  gatewayId: string;
  dueScore: string;
  undeliveredScore: string;
}

export interface InsertClaimedArguments extends InsertArguments {
  claimKey: string;
  claimJson: string;
  claimExpiresAt: number;
}

export interface CompareAndSetArguments extends InsertArguments {
  deadLettersKey: string;
  failuresKey: string;
  /** The `FailedCommand` as JSON when the record enters failed or expired, else ''. */
  failureEntry: string;
  reason: string;
  at: number;
  undeliveredHead: string;
  undeliveredTail: string;
  /** Epoch ms at which a terminal record is forgotten; '' while it is not terminal. */
  forgetAt: string;
  retentionMs: number;
}

export interface CommandScripts {
  /** Resolves true when written, false when the id already exists. */
  insert(args: InsertArguments): Promise<boolean>;
  /** Resolves true when written, false when the id exists, the stored claim's JSON when claimed. */
  insertClaimed(args: InsertClaimedArguments): Promise<boolean | string>;
  /** Resolves true when written, false when the stored version is not `args.version - 1`. */
  compareAndSet(args: CompareAndSetArguments): Promise<boolean>;
}

/** The methods `defineCommand` adds; ioredis cannot type them, so they are declared here. */
interface ScriptedRedis {
  backhaulInsertCommand(...keysThenArgs: (string | number)[]): Promise<number>;
  backhaulCompareAndSetCommand(...keysThenArgs: (string | number)[]): Promise<number>;
  backhaulInsertClaimedCommand(...keysThenArgs: (string | number)[]): Promise<number | string>;
}

/**
 * Registers the scripts on a connection (once: several stores may share one connection) and
 * returns typed callers. ioredis sends EVALSHA and falls back to EVAL after a Redis restart
 * emptied its script cache, so a restarted Redis needs nothing from us.
 */
export function defineCommandScripts(redis: Redis): CommandScripts {
  const scripted = redis as unknown as Redis & ScriptedRedis;
  const definitions: [keyof ScriptedRedis, string, number][] = [
    ['backhaulInsertCommand', insertScript, 3],
    ['backhaulInsertClaimedCommand', insertClaimedScript, 4],
    ['backhaulCompareAndSetCommand', compareAndSetScript, 5],
  ];
  for (const [name, lua, numberOfKeys] of definitions) {
    if (typeof scripted[name] !== 'function') redis.defineCommand(name, { lua, numberOfKeys });
  }
  const insertArgs = (a: InsertArguments) => [
    a.json,
    a.id,
    a.version,
    a.state,
    a.gatewayId,
    a.dueScore,
    a.undeliveredScore,
  ];
  return {
    async insert(a) {
      const written = await scripted.backhaulInsertCommand(
        a.recordKey,
        a.dueKey,
        a.undeliveredKey,
        ...insertArgs(a),
      );
      return written === 1;
    },
    async insertClaimed(a) {
      const outcome = await scripted.backhaulInsertClaimedCommand(
        a.recordKey,
        a.dueKey,
        a.undeliveredKey,
        a.claimKey,
        ...insertArgs(a),
        a.claimJson,
        a.claimExpiresAt,
      );
      return typeof outcome === 'string' ? outcome : outcome === 1;
    },
    async compareAndSet(a) {
      const written = await scripted.backhaulCompareAndSetCommand(
        a.recordKey,
        a.dueKey,
        a.undeliveredKey,
        a.deadLettersKey,
        a.failuresKey,
        a.json,
        a.id,
        a.version,
        a.state,
        a.gatewayId,
        a.dueScore,
        a.undeliveredScore,
        a.reason,
        a.at,
        a.undeliveredHead,
        a.undeliveredTail,
        a.forgetAt,
        a.retentionMs,
        a.failureEntry,
      );
      return written === 1;
    },
  };
}
