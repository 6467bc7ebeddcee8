import { createPostgresDataSource } from '@backhaul/source-postgres';
import { describe, expect, it } from 'vitest';
import { postgresUrl, requirePostgres, skipPostgresSuites } from './postgres-service.js';

const ROWS = 2_000_000;
const BATCH = 10_000;
const HEAP_BUDGET = 100 * 1024 * 1024;

describe.skipIf(skipPostgresSuites)('postgres source: a large result streams, never held whole', () => {
  requirePostgres();

  it(`reads ${ROWS.toLocaleString('en')} rows in batches of ${BATCH.toLocaleString('en')} with bounded heap`, async () => {
    const source = createPostgresDataSource({ connectionString: postgresUrl, poolSize: 1 });
    const startHeap = process.memoryUsage().heapUsed;
    let peakHeap = startHeap;
    let rows = 0;
    let batches = 0;
    let last = 0;
    const started = performance.now();
    const cursor = await source.query({
      sql: `SELECT i, i * 2 AS doubled, 'row-' || i AS label, i % 3 = 0 AS third FROM generate_series(1, ${ROWS}) AS i`,
      params: [],
    });
    for await (const batch of cursor.batches(BATCH)) {
      expect(batch.length).toBeLessThanOrEqual(BATCH);
      rows += batch.length;
      batches++;
      last = batch[batch.length - 1]![0] as number;
      if (batches % 10 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    }
    await cursor.close();
    const seconds = (performance.now() - started) / 1000;
    await source.close();

    expect(rows).toBe(ROWS);
    expect(batches).toBe(ROWS / BATCH);
    expect(last).toBe(ROWS);
    const growth = peakHeap - startHeap;
    console.warn(
      `postgres: ${rows.toLocaleString('en')} rows (4 columns) in ${seconds.toFixed(2)} s = ` +
        `${Math.round(rows / seconds).toLocaleString('en')} rows/s; heap growth ${(growth / 1048576).toFixed(1)} MB`,
    );
    expect(growth).toBeLessThan(HEAP_BUDGET);
  }, 120_000);
});
