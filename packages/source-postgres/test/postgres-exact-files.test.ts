import type { DataSource } from '@backhaul/core';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../../../test/support/duckdb-reader.js';
import { fileOf, rowsOf } from '../../../test/support/source-files.js';
import { adminQuery, postgresService, postgresUrl, uniqueTableName } from './postgres-service.js';

// Every file is read back by DuckDB, the reference reader, through both ways the gateway writes one:
// column batches (file mode) and row batches (auto mode once a result outgrows rows).
postgresService.describe('postgres source: files exact for every value, read back by DuckDB', () => {
  const table = uniqueTableName('exact');
  let source: DataSource;
  let duck: DuckDbReader;

  beforeAll(async () => {
    await adminQuery(`CREATE TABLE ${table} (id int, name text)`);
    await adminQuery(`INSERT INTO ${table} VALUES (1, 'ada'), (2, 'bob')`);
    source = createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 });
    duck = await openDuckDb();
  });
  afterAll(async () => {
    duck?.close();
    await source?.close();
    await adminQuery(`DROP TABLE IF EXISTS ${table}`);
  });

  for (const path of ['columnar', 'rows'] as const) {
    it(`names duplicate columns ?column?, ?column?_1 and id, id_1 (${path})`, async () => {
      const constants = await duck.file(await fileOf(source, 'SELECT 1, 2', path));
      expect(await duck.rows(constants)).toEqual([{ '?column?': 1, '?column?_1': 2 }]);
      const joined = await duck.file(
        await fileOf(source, `SELECT * FROM ${table} a JOIN ${table} b ON a.id = b.id ORDER BY a.id`, path),
      );
      expect((await duck.describe(joined)).map((c) => c.name)).toEqual(['id', 'name', 'id_1', 'name_1']);
    });

    it(`keeps timestamps exact to the microsecond, past 2^53 µs (${path})`, async () => {
      const file = await duck.file(
        await fileOf(
          source,
          `SELECT timestamp '9999-12-31 23:59:59.999999' AS last, timestamptz '2024-01-01 00:00:00.123456+00' AS tz,
                  timestamp '1969-12-31 23:59:59.999999' AS before_1970`,
          path,
        ),
      );
      const [row] = await duck.rows(file, {
        select: 'epoch_us(last) AS last, epoch_us(tz) AS tz, epoch_us(before_1970) AS before_1970',
      });
      expect(row).toEqual({ last: 253_402_300_799_999_999n, tz: 1_704_067_200_123_456n, before_1970: -1n });
    });

    it(`clamps ±infinity to 0001-01-01 … 9999-12-31, which every reader opens (${path})`, async () => {
      const file = await duck.file(
        await fileOf(
          source,
          `SELECT date 'infinity' AS d_max, date '-infinity' AS d_min,
                  timestamp 'infinity' AS t_max, timestamptz '-infinity' AS t_min`,
          path,
        ),
      );
      const [row] = await duck.rows(file, {
        select: `d_max::VARCHAR AS d_max, d_min::VARCHAR AS d_min,
                 strftime(t_max, '%Y-%m-%d %H:%M:%S.%f') AS t_max, strftime(t_min, '%Y-%m-%d %H:%M:%S.%f') AS t_min`,
      });
      expect(row).toEqual({
        d_max: '9999-12-31',
        d_min: '0001-01-01',
        t_max: '9999-12-31 23:59:59.999999',
        t_min: '0001-01-01 00:00:00.000000',
      });
    });

    it(`writes real as the double of its shortest decimal text: 3.14 reads 3.14 (${path})`, async () => {
      const file = await duck.file(
        await fileOf(source, `SELECT 3.14::real AS r, 0.1::real AS tenth, 16777217::real AS big`, path),
      );
      expect(await duck.describe(file)).toMatchObject([
        { type: 'DOUBLE' },
        { type: 'DOUBLE' },
        { type: 'DOUBLE' },
      ]);
      // 16777217 has no float4: PostgreSQL stores (and prints) 16777216.
      expect(await duck.rows(file)).toEqual([{ r: 3.14, tenth: 0.1, big: 16777216 }]);
    });

    it(`writes numeric(19..38) as an exact DECIMAL, wider ones as text (${path})`, async () => {
      const file = await duck.file(
        await fileOf(
          source,
          `SELECT '1234567890123456789012345678.0123456789'::numeric(38,10) AS d38,
                  '-0.0000000001'::numeric(38,10) AS tiny, '-9999999999999999999'::numeric(19,0) AS d19,
                  '1.5'::numeric(50,2) AS d50`,
          path,
        ),
      );
      expect((await duck.describe(file)).map((c) => c.type)).toEqual([
        'DECIMAL(38,10)',
        'DECIMAL(38,10)',
        'DECIMAL(19,0)',
        'VARCHAR',
      ]);
      const [row] = await duck.rows(file, {
        select: 'd38::VARCHAR AS d38, tiny::VARCHAR AS tiny, d19::VARCHAR AS d19, d50',
      });
      expect(row).toEqual({
        d38: '1234567890123456789012345678.0123456789',
        tiny: '-0.0000000001',
        d19: '-9999999999999999999',
        d50: '1.50',
      });
    });
  }

  it('rows mode carries the same values: unique names, µs timestamps, clamped infinity, real as printed', async () => {
    const constants = await rowsOf(source, 'SELECT 1, 2');
    expect(constants.columns.map((c) => c.name)).toEqual(['?column?', '?column?_1']);
    const { rows } = await rowsOf(
      source,
      `SELECT timestamp '9999-12-31 23:59:59.999999', timestamptz '2024-01-01 00:00:00.123456+00',
              date 'infinity', timestamp '-infinity', 3.14::real`,
    );
    expect(rows).toEqual([
      [
        '9999-12-31T23:59:59.999999Z',
        '2024-01-01T00:00:00.123456Z',
        '9999-12-31',
        '0001-01-01T00:00:00.000000Z',
        3.14,
      ],
    ]);
  });
});
