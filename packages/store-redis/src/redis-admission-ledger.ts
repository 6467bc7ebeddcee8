import {
  type AdmissionLedger,
  type AdmissionTicket,
  admissionClasses,
  type LedgerRefusal,
} from '@backhaul/core';
import type { Redis } from 'ioredis';
import { defineAdmissionScripts } from './admission-scripts.js';
import { defaultKeyPrefix, guard as guardAs, storeConnection } from './redis-connection.js';

export interface RedisAdmissionLedgerOptions {
  /** A connection to use (e.g. the command store's `redis`); the ledger then leaves it open on `close()`. */
  redis?: Redis;
  /** Used when `redis` is not given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prepended to every key; use the command store's. Default `backhaul:`. */
  keyPrefix?: string;
  /**
   * How long a slot lives unless the server holding it renews it (the server renews three times
   * per lease). The slots of a server that died come back after at most this long. Default 30 000.
   */
  leaseMs?: number;
}

/**
 * Admission slots counted in Redis (docs/redis.md, docs/cluster.md): every server on one Redis
 * and prefix shares the limits of each class, and the gateways' and callers' shares of them.
 */
export function createRedisAdmissionLedger(options: RedisAdmissionLedgerOptions = {}): AdmissionLedger {
  const keyPrefix = options.keyPrefix ?? defaultKeyPrefix;
  const leaseMs = options.leaseMs ?? 30_000;
  if (!Number.isSafeInteger(leaseMs) || leaseMs < 100) {
    throw new RangeError(`createRedisAdmissionLedger: leaseMs must be a whole number >= 100, got ${leaseMs}`);
  }
  const connection = storeConnection(options);
  const scripts = defineAdmissionScripts(connection.redis);
  const slotKey = (id: string) => `${keyPrefix}adm:slot:${id}`;
  // Sets are named in the scripts, which ioredis does not prefix: the connection's own prefix is added here.
  const setPrefix = connection.scriptKey(`${keyPrefix}adm:`);

  const take = async (ticket: AdmissionTicket, limits: Parameters<AdmissionLedger['acquire']>[1]) => {
    const outcome = await guard(
      scripts.take({
        slotKey: slotKey(ticket.id),
        setPrefix,
        id: ticket.id,
        admissionClass: ticket.admissionClass,
        // Encoded, so no ID can spell another set's name.
        gatewayId: encodeURIComponent(ticket.gatewayId),
        callerId: ticket.callerId === undefined ? '' : encodeURIComponent(ticket.callerId),
        limit: limits.limit,
        perGateway: limits.perGateway,
        perCaller: limits.perCaller,
        leaseMs,
      }),
    );
    return outcome === '' ? undefined : (outcome as LedgerRefusal);
  };

  return {
    name: 'redis',
    leaseMs,
    acquire: take,
    promote: take,
    release: (id) => guard(scripts.release(slotKey(id), setPrefix, id)),
    async renew(ids) {
      // Bounded batches: one script call must not hold Redis for long.
      for (let start = 0; start < ids.length; start += RENEW_BATCH) {
        const batch = ids.slice(start, start + RENEW_BATCH);
        await guard(scripts.renew(batch.map(slotKey), setPrefix, batch, leaseMs));
      }
    },
    async occupancy() {
      const [small = 0, medium = 0, large = 0] = await guard(scripts.occupancy(setPrefix, admissionClasses));
      return { small, medium, large };
    },
    close: () => connection.close(),
  };
}

const RENEW_BATCH = 500;

const guard = <T>(operation: Promise<T>) => guardAs('Redis admission ledger', operation);
