import { ROW_LOG_READ_LIMIT, type RowLog, type RowLogSummary, rowsTooLarge } from '@backhaul/core';
import type { Redis } from 'ioredis';
import { defaultKeyPrefix, guard, storeConnection } from './redis-connection.js';

export interface RedisRowLogOptions {
  /** A connection to use; the log then leaves it open on `close()`, its owner closes it. */
  redis?: Redis;
  /** Used when `redis` is not given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prepended to every key. Default `backhaul:`. */
  keyPrefix?: string;
  /**
   * A query's log that gets no append for this long is deleted even though it never ended
   * (its command ended on an instance that died before saying so). Default 24 h.
   */
  idleTtlMs?: number;
}

/**
 * Appends one batch atomically: dedupe by seq, the byte bound, the stream entry and the summary.
 * KEYS: meta hash, seq set, stream. ARGV: seq, byteLength, maxBytes, rows in the batch, columns
 * JSON or '', batch JSON, idle TTL ms. Returns the position, -1 for a seq held, -2 past the bound.
 */
const appendScript = `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0') + tonumber(ARGV[2])
if bytes > tonumber(ARGV[3]) then return -2 end
local position = redis.call('HINCRBY', KEYS[1], 'position', 1)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '0-' .. position, 'b', ARGV[6])
redis.call('HSET', KEYS[1], 'bytes', bytes)
redis.call('HINCRBY', KEYS[1], 'batches', 1)
redis.call('HINCRBY', KEYS[1], 'rows', tonumber(ARGV[4]))
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[1], 'columns') == 0 then
  redis.call('HSET', KEYS[1], 'columns', ARGV[5])
end
local contiguous = tonumber(redis.call('HGET', KEYS[1], 'contiguous') or '0')
while redis.call('SISMEMBER', KEYS[2], tostring(contiguous)) == 1 do contiguous = contiguous + 1 end
redis.call('HSET', KEYS[1], 'contiguous', contiguous)
if redis.call('HEXISTS', KEYS[1], 'ended') == 0 then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[7]) end
end
return position
`;

/**
 * A `RowLog` on Redis (docs/cluster.md "Bus and row log"): per query a stream whose entry IDs
 * are `0-<position>`, a set of the seqs held and a summary hash, all expiring. Its size is
 * bounded by the server's byte bound per query (`rowsByteLimit` × 2).
 */
export function createRedisRowLog(options: RedisRowLogOptions = {}): RowLog {
  const prefix = `${options.keyPrefix ?? defaultKeyPrefix}rows:`;
  const idleTtlMs = options.idleTtlMs ?? 24 * 60 * 60 * 1000;
  const connection = storeConnection(options);
  const { redis } = connection;
  const keys = (queryId: string) => {
    const base = `${prefix}${encodeURIComponent(queryId)}:`;
    return [`${base}meta`, `${base}seqs`, `${base}log`] as const;
  };

  return {
    name: 'redis',
    async append(queryId, batch, { byteLength, maxBytes }) {
      const outcome = (await guard(
        'Redis row log append failed',
        redis.eval(
          appendScript,
          3,
          ...keys(queryId),
          String(batch.seq),
          String(byteLength),
          String(maxBytes),
          String(batch.rows.length),
          batch.columns ? JSON.stringify(batch.columns) : '',
          JSON.stringify(batch),
          String(idleTtlMs),
        ),
      )) as number;
      if (outcome === -1) return { added: false };
      if (outcome === -2) throw rowsTooLarge(maxBytes);
      return { added: true, position: outcome };
    },
    async read(queryId, after, limit = ROW_LOG_READ_LIMIT) {
      const [, , stream] = keys(queryId);
      const entries = await guard(
        'Redis row log read failed',
        redis.xrange(stream, `0-${Math.max(0, after) + 1}`, '+', 'COUNT', limit),
      );
      return entries.map(([id, fields]) => ({
        position: Number(id.slice(2)),
        batch: JSON.parse(fields[1] as string),
      }));
    },
    async summary(queryId) {
      const [meta] = keys(queryId);
      const fields = await guard('Redis row log read failed', redis.hgetall(meta));
      if (!fields.position) return undefined;
      const summary: RowLogSummary = {
        position: Number(fields.position),
        batchCount: Number(fields.batches ?? 0),
        rowCount: Number(fields.rows ?? 0),
        bytes: Number(fields.bytes ?? 0),
        contiguousBatches: Number(fields.contiguous ?? 0),
        columns: fields.columns ? JSON.parse(fields.columns) : [],
      };
      return summary;
    },
    async end(queryId, retentionMs) {
      const all = keys(queryId);
      const [meta] = all;
      // Only a log that exists is marked: HSET on a missing key would create one that never expires.
      const transaction = redis.multi();
      if ((await guard('Redis row log end failed', redis.exists(meta))) === 0) return;
      transaction.hset(meta, 'ended', '1');
      for (const key of all) transaction.pexpire(key, retentionMs);
      await guard('Redis row log end failed', transaction.exec());
    },
    close: () => connection.close(),
  };
}
