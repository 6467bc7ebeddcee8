import type { DataSource } from '@backhaul/core';
import { countRows, itRefusesEachWrite } from '@backhaul/core/testing';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { adminQuery, mysqlService, mysqlUrl, uniqueTableName } from './mysql-service.js';

mysqlService.describe('mysql source: a query can never change the database', () => {
  const table = uniqueTableName('read_only');
  let source: DataSource;
  const count = async () => (await adminQuery<{ n: number }[]>(`SELECT COUNT(*) AS n FROM ${table}`))[0]!.n;

  beforeAll(async () => {
    await adminQuery(`CREATE TABLE ${table} (id INT PRIMARY KEY, name TEXT) ENGINE = InnoDB`);
    await adminQuery(`INSERT INTO ${table} SELECT seq, CONCAT('row ', seq) FROM seq_1_to_10`);
    // One connection: every refusal below runs on the same session, so one that left it
    // writable would let the next statement write.
    source = createMysqlDataSource({ uri: mysqlUrl, poolSize: 1 });
  });
  afterAll(async () => {
    await source?.close();
    await adminQuery(`DROP TABLE IF EXISTS ${table}, ${table}_other`);
  });

  const refused = [
    ['INSERT', () => `INSERT INTO ${table} VALUES (11, 'new')`],
    ['INSERT … SELECT', () => `INSERT INTO ${table} SELECT 12, 'new'`],
    ['UPDATE', () => `UPDATE ${table} SET name = 'changed'`],
    ['DELETE', () => `DELETE FROM ${table}`],
    ['DELETE … RETURNING (MariaDB)', () => `DELETE FROM ${table} RETURNING id`],
    ['REPLACE', () => `REPLACE INTO ${table} VALUES (1, 'replaced')`],
    ['CREATE TABLE', () => `CREATE TABLE ${table}_other (id INT)`],
    ['CREATE TEMPORARY TABLE', () => `CREATE TEMPORARY TABLE ${table}_tmp (id INT)`],
    ['TRUNCATE', () => `TRUNCATE TABLE ${table}`],
    ['DROP TABLE', () => `DROP TABLE ${table}`],
    ['SET TRANSACTION READ WRITE', () => 'SET TRANSACTION READ WRITE'],
    ['SET SESSION tx_read_only = 0', () => 'SET SESSION tx_read_only = 0'],
    ['COMMIT', () => 'COMMIT'],
    ['multiple statements', () => `SELECT 1; DELETE FROM ${table}`],
    ['multiple statements, the write first', () => `DELETE FROM ${table}; SELECT 1`],
    ['a write after a refusal on the same session', () => `UPDATE ${table} SET name = 'after'`],
  ] as const;

  itRefusesEachWrite({
    source: () => source,
    refused,
    tableRows: count,
    rowCount: 10,
    unchanged: async () => {
      const names = await adminQuery<{ name: string }[]>(
        `SELECT DISTINCT name FROM ${table} WHERE name NOT LIKE 'row %'`,
      );
      expect(names).toEqual([]);
    },
  });

  it("reports the server's own message for a write", async () => {
    await expect(countRows(source, `DELETE FROM ${table}`)).rejects.toMatchObject({
      code: 'query-failed',
      message: expect.stringContaining('READ ONLY'),
    });
  });

  it('still reads after every refusal (no connection left in a broken state)', async () => {
    expect(await countRows(source, `SELECT * FROM ${table}`)).toBe(10);
    expect(await countRows(source, `SELECT * FROM ${table}`)).toBe(10);
  });
});
