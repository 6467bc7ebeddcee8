import { createMysqlDataSource } from '@backhaul/source-mysql';
import { describe, expect, it } from 'vitest';
import { adminQuery, mysqlReachable, mysqlUrl, requireMysql, skipMysqlSuites } from './mysql-service.js';

const ROWS = 2_000_000;
const BATCH = 10_000;
const HEAP_BUDGET = 100 * 1024 * 1024;

/** MariaDB's SEQUENCE engine when present; elsewhere (MySQL) 1000 × 1000 × 2 rows from recursive CTEs. */
async function numbersSql(): Promise<string> {
  const hasSequence =
    mysqlReachable &&
    (
      await adminQuery<{ n: number }[]>(
        "SELECT COUNT(*) AS n FROM information_schema.ENGINES WHERE ENGINE = 'SEQUENCE'",
      )
    )[0]!.n > 0;
  if (hasSequence) return `SELECT seq AS n FROM seq_1_to_${ROWS}`;
  return `WITH RECURSIVE k (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 999)
    SELECT a.i * 2000 + b.i * 2 + c.i + 1 AS n FROM k a, k b, (SELECT 0 AS i UNION ALL SELECT 1) c`;
}

describe.skipIf(skipMysqlSuites)('mysql source: a large result streams, never held whole', () => {
  requireMysql();

  it(`reads ${ROWS.toLocaleString('en')} rows in batches of ${BATCH.toLocaleString('en')} with bounded heap`, async () => {
    const sql = `SELECT n, n * 2 AS doubled, CONCAT('row-', n) AS label, n % 3 = 0 AS third FROM (${await numbersSql()}) AS t`;
    const source = createMysqlDataSource({ uri: mysqlUrl, poolSize: 1 });
    const startHeap = process.memoryUsage().heapUsed;
    let peakHeap = startHeap;
    let rows = 0;
    let batches = 0;
    const started = performance.now();
    const cursor = await source.query({ sql, params: [] });
    for await (const batch of cursor.batches(BATCH)) {
      expect(batch.length).toBeLessThanOrEqual(BATCH);
      rows += batch.length;
      batches++;
      if (batches % 10 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    }
    await cursor.close();
    const seconds = (performance.now() - started) / 1000;
    await source.close();

    expect(rows).toBe(ROWS);
    expect(batches).toBe(ROWS / BATCH);
    const growth = peakHeap - startHeap;
    console.warn(
      `mysql: ${rows.toLocaleString('en')} rows (4 columns) in ${seconds.toFixed(2)} s = ` +
        `${Math.round(rows / seconds).toLocaleString('en')} rows/s; heap growth ${(growth / 1048576).toFixed(1)} MB`,
    );
    expect(growth).toBeLessThan(HEAP_BUDGET);
  }, 120_000);
});
