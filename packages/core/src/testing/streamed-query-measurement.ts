import { expect } from 'vitest';
import type { DataSource, RowValue } from '../data-source.js';

export interface StreamedQueryMeasurement {
  rows: number;
  batches: number;
  /** The last row read, to check the result reached its end. */
  lastRow: RowValue[] | undefined;
  /** Peak heap use while reading, above the heap use before the query. */
  heapGrowthBytes: number;
  seconds: number;
  /** One line for the test log: rows, columns, time, rows/s, heap growth. */
  report: string;
}

/**
 * Runs a large query on a source and reads it in batches of `batchSize`, sampling the heap as it
 * goes, for a test that a result streams rather than being held whole (a source "never holds a
 * whole result in memory"). Checks that no batch is larger than asked for; closes the cursor.
 */
export async function measureStreamedQuery(
  source: DataSource,
  sql: string,
  batchSize: number,
): Promise<StreamedQueryMeasurement> {
  const startHeap = process.memoryUsage().heapUsed;
  let peakHeap = startHeap;
  let rows = 0;
  let batches = 0;
  let lastRow: RowValue[] | undefined;
  const started = performance.now();
  const cursor = await source.query({ sql, params: [] });
  try {
    for await (const batch of cursor.batches(batchSize)) {
      expect(batch.length).toBeLessThanOrEqual(batchSize);
      rows += batch.length;
      batches++;
      lastRow = batch[batch.length - 1];
      // Sampled, not every batch: memoryUsage() itself costs a few microseconds.
      if (batches % 10 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    }
  } finally {
    await cursor.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const heapGrowthBytes = peakHeap - startHeap;
  const report =
    `${rows.toLocaleString('en')} rows (${cursor.columns.length} columns) in ${seconds.toFixed(2)} s = ` +
    `${Math.round(rows / seconds).toLocaleString('en')} rows/s; heap growth ${(heapGrowthBytes / 1048576).toFixed(1)} MB`;
  return { rows, batches, lastRow, heapGrowthBytes, seconds, report };
}
