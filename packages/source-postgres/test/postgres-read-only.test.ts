import { BackhaulError, type DataSource } from '@backhaul/core';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminQuery,
  postgresUrl,
  requirePostgres,
  skipPostgresSuites,
  uniqueTableName,
} from './postgres-service.js';

async function drain(source: DataSource, sql: string): Promise<number> {
  const cursor = await source.query({ sql, params: [] });
  let rows = 0;
  try {
    for await (const batch of cursor.batches(100)) rows += batch.length;
  } finally {
    await cursor.close();
  }
  return rows;
}

describe.skipIf(skipPostgresSuites)('postgres source: a query can never change the database', () => {
  requirePostgres();
  const table = uniqueTableName('read_only');
  const sequence = `${table}_seq`;
  let source: DataSource;
  const count = async () => Number((await adminQuery(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);

  beforeAll(async () => {
    await adminQuery(`CREATE TABLE ${table} (id int PRIMARY KEY, name text)`);
    await adminQuery(`INSERT INTO ${table} SELECT i, 'row ' || i FROM generate_series(1, 10) AS i`);
    await adminQuery(`CREATE SEQUENCE ${sequence}`);
    source = createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 });
  });
  afterAll(async () => {
    await source?.close();
    await adminQuery(`DROP TABLE IF EXISTS ${table}; DROP SEQUENCE IF EXISTS ${sequence}`);
  });

  const refused = [
    ['INSERT', () => `INSERT INTO ${table} VALUES (11, 'new')`],
    ['INSERT … RETURNING', () => `INSERT INTO ${table} VALUES (12, 'new') RETURNING *`],
    ['UPDATE', () => `UPDATE ${table} SET name = 'changed'`],
    ['DELETE', () => `DELETE FROM ${table}`],
    ['CREATE TABLE', () => `CREATE TABLE ${table}_other (id int)`],
    ['DROP TABLE', () => `DROP TABLE ${table}`],
    ['TRUNCATE', () => `TRUNCATE ${table}`],
    ['SET TRANSACTION READ WRITE', () => 'SET TRANSACTION READ WRITE'],
    [
      'set_config(transaction_read_only, off)',
      () => "SELECT set_config('transaction_read_only', 'off', true)",
    ],
    ['a data-modifying CTE', () => `WITH d AS (DELETE FROM ${table} RETURNING *) SELECT count(*) FROM d`],
    ['multiple statements', () => `SELECT 1; DELETE FROM ${table}`],
    ['multiple statements, the write first', () => `DELETE FROM ${table}; SELECT 1`],
    ['nextval()', () => `SELECT nextval('${sequence}')`],
    ['COMMIT', () => 'COMMIT'],
    ['a DO block', () => `DO $$ BEGIN DELETE FROM ${table}; END $$`],
  ] as const;

  for (const [what, sql] of refused) {
    it(`refuses ${what} with 'query-failed' or 'bad-request', table unchanged`, async () => {
      const before = await count();
      let failure: unknown;
      try {
        await drain(source, sql());
      } catch (error) {
        failure = error;
      }
      expect(BackhaulError.isInstance(failure), `expected a BackhaulError, got ${String(failure)}`).toBe(
        true,
      );
      expect(['query-failed', 'bad-request']).toContain((failure as BackhaulError).code);
      expect(await count()).toBe(before);
      expect(before).toBe(10);
    });
  }

  it("reports PostgreSQL's own message for a write", async () => {
    await expect(drain(source, `DELETE FROM ${table} RETURNING id`)).rejects.toMatchObject({
      code: 'query-failed',
      message: expect.stringContaining('read-only transaction'),
    });
  });

  it('still reads after every refusal (no connection left in a broken state)', async () => {
    expect(await drain(source, `SELECT * FROM ${table}`)).toBe(10);
    expect(await drain(source, `SELECT * FROM ${table}`)).toBe(10);
  });
});
