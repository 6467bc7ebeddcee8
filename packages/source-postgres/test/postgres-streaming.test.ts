import { measureStreamedQuery } from '@backhaul/core/testing';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { expect, it } from 'vitest';
import { postgresService, postgresUrl } from './postgres-service.js';

const ROWS = 2_000_000;
const BATCH = 10_000;
const HEAP_BUDGET = 100 * 1024 * 1024;

postgresService.describe('postgres source: a large result streams, never held whole', () => {
  it(`reads ${ROWS.toLocaleString('en')} rows in batches of ${BATCH.toLocaleString('en')} with bounded heap`, async () => {
    const source = createPostgresDataSource({ connectionString: postgresUrl, poolSize: 1 });
    const streamed = await measureStreamedQuery(
      source,
      `SELECT i, i * 2 AS doubled, 'row-' || i AS label, i % 3 = 0 AS third FROM generate_series(1, ${ROWS}) AS i`,
      BATCH,
    );
    await source.close();

    expect(streamed.rows).toBe(ROWS);
    expect(streamed.batches).toBe(ROWS / BATCH);
    expect(streamed.lastRow?.[0]).toBe(ROWS);
    console.warn(`postgres: ${streamed.report}`);
    expect(streamed.heapGrowthBytes).toBeLessThan(HEAP_BUDGET);
  }, 120_000);
});
