import type { DataSource } from '@backhaul/core';
import { countRows, itRefusesEachWrite } from '@backhaul/core/testing';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { adminQuery, postgresService, postgresUrl, uniqueTableName } from './postgres-service.js';

postgresService.describe('postgres source: a query can never change the database', () => {
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

  itRefusesEachWrite({ source: () => source, refused, tableRows: count, rowCount: 10 });

  it("reports PostgreSQL's own message for a write", async () => {
    await expect(countRows(source, `DELETE FROM ${table} RETURNING id`)).rejects.toMatchObject({
      code: 'query-failed',
      message: expect.stringContaining('read-only transaction'),
    });
  });

  it('still reads after every refusal (no connection left in a broken state)', async () => {
    expect(await countRows(source, `SELECT * FROM ${table}`)).toBe(10);
    expect(await countRows(source, `SELECT * FROM ${table}`)).toBe(10);
  });
});
