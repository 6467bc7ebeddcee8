import { BackhaulError, type Column, type RowBatch } from '@backhaul/core';

/**
 * Row batches of each query, kept in memory for callers (docs/protocol.md §3.3, §3.4, §5.3).
 * Bounded per query by `maxBytesPerQuery` (measured on the JSON bodies as received), and
 * released a while after the query ends.
 */
export interface RowResults {
  /** `added`, or `duplicate` for a `seq` already held (§5.3: accepted and ignored). */
  add(commandId: string, batch: RowBatch, byteLength: number): 'added' | 'duplicate';
  /** Batches held so far, in `seq` order, for a late subscriber. */
  batches(commandId: string): RowBatch[];
  /** What §5.5 `kind: rows` must match. */
  counts(commandId: string): { batchCount: number; rowCount: number; contiguousBatches: number };
  result(commandId: string): { columns: Column[]; rows: unknown[][] } | undefined;
  /** Forget the batches after `afterMs` (the query ended; callers had their window). */
  releaseLater(commandId: string, afterMs: number): void;
  clear(): void;
}

interface HeldRows {
  batches: Map<number, RowBatch>;
  bytes: number;
  rowCount: number;
  released: NodeJS.Timeout | undefined;
}

export function createRowResults(maxBytesPerQuery: number): RowResults {
  const held = new Map<string, HeldRows>();
  const ordered = (rows: HeldRows) => [...rows.batches.values()].sort((a, b) => a.seq - b.seq);

  return {
    add(commandId, batch, byteLength) {
      let rows = held.get(commandId);
      if (!rows) {
        rows = { batches: new Map(), bytes: 0, rowCount: 0, released: undefined };
        held.set(commandId, rows);
      }
      if (rows.batches.has(batch.seq)) return 'duplicate';
      if (rows.bytes + byteLength > maxBytesPerQuery) {
        throw new BackhaulError(
          'payload-too-large',
          `Row batches of this query exceed ${maxBytesPerQuery} bytes; send the result as a file`,
          { details: { limit: maxBytesPerQuery } },
        );
      }
      rows.batches.set(batch.seq, batch);
      rows.bytes += byteLength;
      rows.rowCount += batch.rows.length;
      return 'added';
    },
    batches(commandId) {
      const rows = held.get(commandId);
      return rows ? ordered(rows) : [];
    },
    counts(commandId) {
      const rows = held.get(commandId);
      if (!rows) return { batchCount: 0, rowCount: 0, contiguousBatches: 0 };
      let contiguousBatches = 0;
      while (rows.batches.has(contiguousBatches)) contiguousBatches++;
      return { batchCount: rows.batches.size, rowCount: rows.rowCount, contiguousBatches };
    },
    result(commandId) {
      const rows = held.get(commandId);
      if (!rows) return undefined;
      const batches = ordered(rows);
      return {
        columns: batches.find((batch) => batch.columns)?.columns ?? [],
        rows: batches.flatMap((batch) => batch.rows),
      };
    },
    releaseLater(commandId, afterMs) {
      const rows = held.get(commandId);
      if (!rows || rows.released) return;
      rows.released = setTimeout(() => held.delete(commandId), afterMs);
      rows.released.unref();
    },
    clear() {
      for (const rows of held.values()) if (rows.released) clearTimeout(rows.released);
      held.clear();
    },
  };
}
