import type { Redis } from 'ioredis';

/*
 * The admission ledger's scripts (docs/redis.md, "Admission slots").
 *
 * Each slot is a member (the command ID) of three sorted sets: its class's, its gateway's in
 * that class and its caller's in that class, scored by when its lease ends; a hash per slot says
 * which sets hold it. Counting the live members of a set and adding one is a single script, so
 * two servers admitting at once never both take the last slot. A set's members whose lease ended
 * are dropped before it is counted: that is how the slots of a server that died come back, with
 * no process watching for deaths. Times come from Redis's own clock (TIME), so servers whose
 * clocks disagree still agree on when a lease ends.
 *
 * Keys other than the slot hash are built in the scripts from the prefix (ARGV[1]), because which
 * sets a promotion leaves is known only from the stored hash; a prefix holding a hash tag keeps
 * them in one Redis Cluster slot, as for the command store's scripts.
 */
const common = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local p = ARGV[1]
local function classKey(c) return p .. c end
local function setsOf(c, g, k)
  local out = { p .. c, p .. c .. ':gw:' .. g }
  if k ~= '' then out[3] = p .. c .. ':caller:' .. k end
  return out
end
local function live(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end
local function drop(id, c, g, k)
  for _, key in ipairs(setsOf(c, g, k)) do redis.call('ZREM', key, id) end
end
-- A set lives as long as its longest lease, so sets nobody looks at again do not pile up.
local function put(id, c, g, k, expires)
  for _, key in ipairs(setsOf(c, g, k)) do
    redis.call('ZADD', key, expires, id)
    local pttl = redis.call('PTTL', key)
    if pttl < 0 or now + pttl < expires then redis.call('PEXPIREAT', key, expires) end
  end
end
-- The slot of the hash at slotKey, or nil when there is none or its lease ended (then it is cleared).
local function heldSlot(slotKey, id)
  local held = redis.call('HMGET', slotKey, 'class', 'gateway', 'caller')
  if not held[1] then return nil end
  local score = redis.call('ZSCORE', classKey(held[1]), id)
  if not score or tonumber(score) <= now then
    drop(id, held[1], held[2], held[3] or '')
    redis.call('DEL', slotKey)
    return nil
  end
  return { class = held[1], gateway = held[2], caller = held[3] or '' }
end
`;

/**
 * KEYS: the slot hash.
 * ARGV: set prefix, id, class, gatewayId, callerId or '', class limit, per-gateway limit,
 *       per-caller limit, lease ms.
 * Returns '' when the slot is held (taken, or held already in this class or a bigger one), else
 * what is full: 'server', 'gateway' or 'caller' (nothing is changed then).
 */
const takeScript = `${common}
local id, c, g = ARGV[2], ARGV[3], ARGV[4]
local expires = now + tonumber(ARGV[9])
local rank = { small = 0, medium = 1, large = 2 }
local held = heldSlot(KEYS[1], id)
if held and rank[held.class] >= rank[c] then
  put(id, held.class, held.gateway, held.caller, expires)
  redis.call('PEXPIREAT', KEYS[1], expires)
  return ''
end
local k = ARGV[5]
if k == '' and held then k = held.caller end
if live(classKey(c)) >= tonumber(ARGV[6]) then return 'server' end
if live(p .. c .. ':gw:' .. g) >= tonumber(ARGV[7]) then return 'gateway' end
if k ~= '' and live(p .. c .. ':caller:' .. k) >= tonumber(ARGV[8]) then return 'caller' end
if held then drop(id, held.class, held.gateway, held.caller) end
put(id, c, g, k, expires)
redis.call('HSET', KEYS[1], 'class', c, 'gateway', g, 'caller', k)
redis.call('PEXPIREAT', KEYS[1], expires)
return ''
`;

/** KEYS: the slot hash. ARGV: set prefix, id. Returns 1 when a live slot was freed. */
const releaseScript = `${common}
local held = heldSlot(KEYS[1], ARGV[2])
if not held then return 0 end
drop(ARGV[2], held.class, held.gateway, held.caller)
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * KEYS: slot hashes. ARGV: set prefix, lease ms, then the ids of the hashes, in order.
 * Extends each live slot's lease; a slot whose lease already ended stays gone (another server
 * may have its place by now). Returns how many were renewed.
 */
const renewScript = `${common}
local expires = now + tonumber(ARGV[2])
local renewed = 0
for i, slotKey in ipairs(KEYS) do
  local id = ARGV[2 + i]
  local held = heldSlot(slotKey, id)
  if held then
    put(id, held.class, held.gateway, held.caller, expires)
    redis.call('PEXPIREAT', slotKey, expires)
    renewed = renewed + 1
  end
end
return renewed
`;

/** ARGV: set prefix, then class names. Returns the live slots of each class, in order. */
const occupancyScript = `${common}
local out = {}
for i = 2, #ARGV do out[i - 1] = live(classKey(ARGV[i])) end
return out
`;

export interface TakeArguments {
  slotKey: string;
  setPrefix: string;
  id: string;
  admissionClass: string;
  gatewayId: string;
  callerId: string;
  limit: number;
  perGateway: number;
  perCaller: number;
  leaseMs: number;
}

export interface AdmissionScripts {
  take(args: TakeArguments): Promise<string>;
  release(slotKey: string, setPrefix: string, id: string): Promise<boolean>;
  renew(slotKeys: string[], setPrefix: string, ids: readonly string[], leaseMs: number): Promise<number>;
  occupancy(setPrefix: string, classes: readonly string[]): Promise<number[]>;
}

/** The methods `defineCommand` adds; ioredis cannot type them, so they are declared here. */
interface ScriptedRedis {
  backhaulTakeSlot(...keysThenArgs: (string | number)[]): Promise<string>;
  backhaulReleaseSlot(...keysThenArgs: (string | number)[]): Promise<number>;
  backhaulRenewSlots(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  backhaulSlotOccupancy(numberOfKeys: number, ...args: (string | number)[]): Promise<number[]>;
}

/** Registers the scripts on a connection once (ioredis falls back to EVAL after a Redis restart). */
export function defineAdmissionScripts(redis: Redis): AdmissionScripts {
  const scripted = redis as unknown as Redis & ScriptedRedis;
  // Renew and occupancy take a varying number of keys, given with each call.
  const definitions: [keyof ScriptedRedis, string, number | undefined][] = [
    ['backhaulTakeSlot', takeScript, 1],
    ['backhaulReleaseSlot', releaseScript, 1],
    ['backhaulRenewSlots', renewScript, undefined],
    ['backhaulSlotOccupancy', occupancyScript, undefined],
  ];
  for (const [name, lua, numberOfKeys] of definitions) {
    if (typeof scripted[name] !== 'function')
      redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
  }
  return {
    take: (a) =>
      scripted.backhaulTakeSlot(
        a.slotKey,
        a.setPrefix,
        a.id,
        a.admissionClass,
        a.gatewayId,
        a.callerId,
        a.limit,
        a.perGateway,
        a.perCaller,
        a.leaseMs,
      ),
    release: async (slotKey, setPrefix, id) =>
      (await scripted.backhaulReleaseSlot(slotKey, setPrefix, id)) === 1,
    renew: (slotKeys, setPrefix, ids, leaseMs) =>
      scripted.backhaulRenewSlots(slotKeys.length, ...slotKeys, setPrefix, leaseMs, ...ids),
    occupancy: (setPrefix, classes) => scripted.backhaulSlotOccupancy(0, setPrefix, ...classes),
  };
}
