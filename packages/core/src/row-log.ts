import { BackhaulError } from './errors.js';
import type { Column, RowBatch } from './protocol.js';

/**
 * The row batches of each query, in the order they arrived, shared by every server instance
 * (docs/protocol.md §3.3, §3.4, §5.3; docs/cluster.md "Bus and row log"). A batch's position
 * (1, 2, 3, … per query) is the `id:` of the caller event that carries it, so a caller that
 * reconnects with `Last-Event-ID` reads on after it and gets no batch twice.
 */
export interface RowLog {
  readonly name: string;
  /**
   * Appends a batch; `{ added: false }` for a `seq` already held (§5.3: accepted and ignored).
   * `payload-too-large` when the query's batches would pass `maxBytes` (measured on the bodies
   * as received, `byteLength`), with nothing appended.
   */
  append(
    queryId: string,
    batch: RowBatch,
    limits: { byteLength: number; maxBytes: number },
  ): Promise<RowAppend>;
  /** Batches at positions after `after` (0: from the start), oldest first, at most `limit`. */
  read(queryId: string, after: number, limit?: number): Promise<RowLogEntry[]>;
  /** What the query's log holds; undefined when it holds nothing (never written, or expired). */
  summary(queryId: string): Promise<RowLogSummary | undefined>;
  /** The query ended: its batches stay readable for `retentionMs`, then go. */
  end(queryId: string, retentionMs: number): Promise<void>;
  close(): Promise<void>;
}

export type RowAppend = { added: true; position: number } | { added: false };

export interface RowLogEntry {
  position: number;
  batch: RowBatch;
}

export interface RowLogSummary {
  /** Position of the last batch appended. */
  position: number;
  batchCount: number;
  rowCount: number;
  bytes: number;
  /** Batches 0..n-1 are all there: what §5.5 `kind: rows` must match. */
  contiguousBatches: number;
  /** From the first batch that carried them. */
  columns: Column[];
}

/** Enough rows for one read of a log; a caller reads on from the last position for more. */
export const ROW_LOG_READ_LIMIT = 1000;

/** Refused append: the query's rows are past the byte bound. */
export function rowsTooLarge(maxBytes: number): BackhaulError {
  return new BackhaulError(
    'payload-too-large',
    `Row batches of this query exceed ${maxBytes} bytes; send the result as a file`,
    { details: { limit: maxBytes } },
  );
}

interface HeldLog {
  entries: RowLogEntry[];
  seqs: Set<number>;
  summary: RowLogSummary;
  expiry: NodeJS.Timeout | undefined;
}

/**
 * The row log of one process, the default. A log of a query that never ends (its gateway
 * vanished, the command expired unseen) is dropped after `idleTtlMs` without an append.
 */
export function createMemoryRowLog(options: { idleTtlMs?: number } = {}): RowLog {
  const idleTtlMs = options.idleTtlMs ?? 24 * 60 * 60 * 1000;
  const logs = new Map<string, HeldLog>();
  const copy = <T>(value: T): T => structuredClone(value);
  const expireIn = (queryId: string, log: HeldLog, ms: number) => {
    if (log.expiry) clearTimeout(log.expiry);
    log.expiry = setTimeout(() => logs.delete(queryId), ms);
    log.expiry.unref();
  };

  return {
    name: 'memory',
    async append(queryId, batch, { byteLength, maxBytes }) {
      let log = logs.get(queryId);
      if (log?.seqs.has(batch.seq)) return { added: false };
      const bytes = (log?.summary.bytes ?? 0) + byteLength;
      if (bytes > maxBytes) throw rowsTooLarge(maxBytes);
      if (!log) {
        log = {
          entries: [],
          seqs: new Set(),
          summary: { position: 0, batchCount: 0, rowCount: 0, bytes: 0, contiguousBatches: 0, columns: [] },
          expiry: undefined,
        };
        logs.set(queryId, log);
      }
      const summary = log.summary;
      const position = summary.position + 1;
      log.entries.push({ position, batch: copy(batch) });
      log.seqs.add(batch.seq);
      summary.position = position;
      summary.batchCount++;
      summary.rowCount += batch.rows.length;
      summary.bytes = bytes;
      if (summary.columns.length === 0 && batch.columns) summary.columns = copy(batch.columns);
      while (log.seqs.has(summary.contiguousBatches)) summary.contiguousBatches++;
      expireIn(queryId, log, idleTtlMs);
      return { added: true, position };
    },
    async read(queryId, after, limit = ROW_LOG_READ_LIMIT) {
      const entries = logs.get(queryId)?.entries ?? [];
      // Positions are 1..n in array order: position p sits at index p - 1.
      return copy(entries.slice(Math.max(0, after), Math.max(0, after) + limit));
    },
    async summary(queryId) {
      const log = logs.get(queryId);
      return log ? copy(log.summary) : undefined;
    },
    async end(queryId, retentionMs) {
      const log = logs.get(queryId);
      if (log) expireIn(queryId, log, retentionMs);
    },
    async close() {
      for (const log of logs.values()) if (log.expiry) clearTimeout(log.expiry);
      logs.clear();
    },
  };
}
