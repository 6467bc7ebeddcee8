import { measureStreamedQuery } from '@backhaul/core/testing';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import { expect, it } from 'vitest';
import { adminQuery, mysqlService, mysqlUrl } from './mysql-service.js';

const ROWS = 2_000_000;
const BATCH = 10_000;
const HEAP_BUDGET = 100 * 1024 * 1024;

/** MariaDB's SEQUENCE engine when present; elsewhere (MySQL) 1000 × 1000 × 2 rows from recursive CTEs. */
async function numbersSql(): Promise<string> {
  const hasSequence =
    mysqlService.available &&
    (
      await adminQuery<{ n: number }[]>(
        "SELECT COUNT(*) AS n FROM information_schema.ENGINES WHERE ENGINE = 'SEQUENCE'",
      )
    )[0]!.n > 0;
  if (hasSequence) return `SELECT seq AS n FROM seq_1_to_${ROWS}`;
  return `WITH RECURSIVE k (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 999)
    SELECT a.i * 2000 + b.i * 2 + c.i + 1 AS n FROM k a, k b, (SELECT 0 AS i UNION ALL SELECT 1) c`;
}

mysqlService.describe('mysql source: a large result streams, never held whole', () => {
  it(`reads ${ROWS.toLocaleString('en')} rows in batches of ${BATCH.toLocaleString('en')} with bounded heap`, async () => {
    const sql = `SELECT n, n * 2 AS doubled, CONCAT('row-', n) AS label, n % 3 = 0 AS third FROM (${await numbersSql()}) AS t`;
    const source = createMysqlDataSource({ uri: mysqlUrl, poolSize: 1 });
    const streamed = await measureStreamedQuery(source, sql, BATCH);
    await source.close();

    expect(streamed.rows).toBe(ROWS);
    expect(streamed.batches).toBe(ROWS / BATCH);
    console.warn(`mysql: ${streamed.report}`);
    expect(streamed.heapGrowthBytes).toBeLessThan(HEAP_BUDGET);
  }, 120_000);
});
