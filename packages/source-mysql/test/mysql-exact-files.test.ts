import type { DataSource } from '@backhaul/core';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../../../test/support/duckdb-reader.js';
import { fileOf, rowsOf } from '../../../test/support/source-files.js';
import { adminQuery, mysqlService, mysqlUrl, uniqueTableName } from './mysql-service.js';

// Every file is read back by DuckDB, the reference reader, through both ways the gateway writes one:
// column batches (file mode) and row batches (auto mode once a result outgrows rows).
mysqlService.describe('mysql source: files exact for every value, read back by DuckDB', () => {
  const table = uniqueTableName('exact');
  let source: DataSource;
  let duck: DuckDbReader;

  beforeAll(async () => {
    await adminQuery(`CREATE TABLE ${table} (id INT, name TEXT, at DATETIME(6), f FLOAT)`);
    await adminQuery(
      `INSERT INTO ${table} VALUES (1, 'ada', '9999-12-31 23:59:59.999999', 3.14),
        (2, 'bob', '1000-01-01 00:00:00.000001', 0.1)`,
    );
    source = createMysqlDataSource({ uri: mysqlUrl, poolSize: 2 });
    duck = await openDuckDb();
  });
  afterAll(async () => {
    duck?.close();
    await source?.close();
    await adminQuery(`DROP TABLE IF EXISTS ${table}`);
  });

  for (const path of ['columnar', 'rows'] as const) {
    it(`names duplicate columns id, id_1 (${path})`, async () => {
      const file = await duck.file(
        await fileOf(
          source,
          `SELECT a.id, a.name, b.id, b.name FROM ${table} a JOIN ${table} b ON a.id = b.id`,
          path,
        ),
      );
      expect((await duck.describe(file)).map((c) => c.name)).toEqual(['id', 'name', 'id_1', 'name_1']);
    });

    it(`keeps DATETIME(6) exact to the microsecond, past 2^53 µs, and FLOAT as printed (${path})`, async () => {
      const file = await duck.file(await fileOf(source, `SELECT id, at, f FROM ${table} ORDER BY id`, path));
      const rows = await duck.rows(file, { select: 'epoch_us("at") AS us, f', orderBy: 'id' });
      expect(rows).toEqual([
        { us: 253_402_300_799_999_999n, f: 3.14 },
        { us: -30_610_224_000_000_000n + 1n, f: 0.1 },
      ]);
    });
  }

  it('rows mode carries the same values: unique names, µs timestamps', async () => {
    const { columns, rows } = await rowsOf(source, `SELECT id, at, id FROM ${table} ORDER BY id`);
    expect(columns.map((c) => c.name)).toEqual(['id', 'at', 'id_1']);
    expect(rows).toEqual([
      [1, '9999-12-31T23:59:59.999999Z', 1],
      [2, '1000-01-01T00:00:00.000001Z', 2],
    ]);
  });
});
