import type { Column, DataSource } from '@backhaul/core';
import { type ParquetColumn, ParquetWriter } from '@backhaul/parquet';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../../../test/support/duckdb-reader.js';
import { fileOf, rowsOf } from '../../../test/support/source-files.js';
import { adminQuery, postgresService, postgresUrl, uniqueTableName } from './postgres-service.js';

// One-dimensional arrays become lists (Parquet LIST, JS arrays in rows) on both paths, read back by
// DuckDB; arrays a list cannot hold exactly fail the query.
postgresService.describe('postgres source: arrays as lists', () => {
  const table = uniqueTableName('lists');
  let source: DataSource;
  let duck: DuckDbReader;

  beforeAll(async () => {
    await adminQuery(
      `CREATE TABLE ${table} (id int, i2 int2[], i4 int4[], i8 int8[], t text[], n numeric(12,2)[],
         f float8[], b bool[], d date[], tz timestamptz[], u uuid[], j jsonb[])`,
    );
    await adminQuery(
      `INSERT INTO ${table} VALUES
        (1, '{1,-2}', '{1,2,3}', '{9007199254740993,-1}',
         ARRAY['a,b', 'say "hi"', '{braces}', NULL, 'NULL', '', ' sp ', 'back\\slash', 'ünï'],
         '{1.5,-0.01,NULL}', '{NaN,Infinity,-Infinity,1.5}', '{t,f,NULL}', '{2024-02-29,infinity,0001-01-01}',
         '{"2024-01-01 00:00:00.123456+00","1969-12-31 23:59:59.999999+00"}',
         '{00000000-0000-0000-0000-000000000001}', ARRAY['{"a": [1, 2]}'::jsonb, 'null'::jsonb]),
        (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (4, '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}', '{NULL}')`,
    );
    source = createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 });
    duck = await openDuckDb();
  });
  afterAll(async () => {
    duck?.close();
    await source?.close();
    await adminQuery(`DROP TABLE IF EXISTS ${table}`);
  });

  const TEXTS = ['a,b', 'say "hi"', '{braces}', null, 'NULL', '', ' sp ', 'back\\slash', 'ünï'];
  /** The rows as rows mode's JSON gives them. */
  const JSON_ROWS = [
    [
      1,
      [1, -2],
      [1, 2, 3],
      ['9007199254740993', -1],
      TEXTS,
      ['1.50', '-0.01', null],
      ['NaN', 'Infinity', '-Infinity', 1.5],
      [true, false, null],
      ['2024-02-29', '9999-12-31', '0001-01-01'],
      ['2024-01-01T00:00:00.123456Z', '1969-12-31T23:59:59.999999Z'],
      ['00000000-0000-0000-0000-000000000001'],
      ['{"a": [1, 2]}', 'null'],
    ],
    [2, [], [], [], [], [], [], [], [], [], [], []],
    [3, null, null, null, null, null, null, null, null, null, null, null],
    [4, [null], [null], [null], [null], [null], [null], [null], [null], [null], [null], [null]],
  ];

  it('reports each array column as a list of its element type', async () => {
    const { columns } = await rowsOf(source, `SELECT * FROM ${table} ORDER BY id`);
    expect(columns.map((c) => [c.name, c.type, c.element])).toEqual([
      ['id', 'int32', undefined],
      ['i2', 'list', { type: 'int32' }],
      ['i4', 'list', { type: 'int32' }],
      ['i8', 'list', { type: 'int64' }],
      ['t', 'list', { type: 'string' }],
      ['n', 'list', { type: 'decimal', precision: 12, scale: 2 }],
      ['f', 'list', { type: 'float64' }],
      ['b', 'list', { type: 'boolean' }],
      ['d', 'list', { type: 'date' }],
      ['tz', 'list', { type: 'timestamp' }],
      ['u', 'list', { type: 'string' }],
      ['j', 'list', { type: 'json' }],
    ]);
  });

  for (const columnar of [false, true]) {
    it(`gives JS arrays in rows mode, NULL and empty lists apart (${columnar ? 'columnar' : 'row'} cursor)`, async () => {
      const { rows } = await rowsOf(source, `SELECT * FROM ${table} ORDER BY id`, { columnar });
      expect(rows).toEqual(JSON_ROWS);
    });
  }

  for (const path of ['columnar', 'rows'] as const) {
    it(`writes Parquet LISTs DuckDB reads with their element types and exact values (${path})`, async () => {
      const file = await duck.file(await fileOf(source, `SELECT * FROM ${table} ORDER BY id`, path));
      expect((await duck.describe(file)).map((c) => [c.name, c.type])).toEqual([
        ['id', 'INTEGER'],
        ['i2', 'INTEGER[]'],
        ['i4', 'INTEGER[]'],
        ['i8', 'BIGINT[]'],
        ['t', 'VARCHAR[]'],
        ['n', 'DECIMAL(12,2)[]'],
        ['f', 'DOUBLE[]'],
        ['b', 'BOOLEAN[]'],
        ['d', 'DATE[]'],
        ['tz', 'TIMESTAMP WITH TIME ZONE[]'],
        ['u', 'VARCHAR[]'],
        ['j', 'JSON[]'],
      ]);
      const rows = await duck.rows(file, {
        select: `id, i2, i4, i8, t, n::VARCHAR[] AS n, f, b, d::VARCHAR[] AS d,
                 list_transform(tz, x -> epoch_us(x)) AS tz, u, j::VARCHAR[] AS j`,
        orderBy: 'id',
      });
      expect(rows).toEqual([
        {
          id: 1,
          i2: [1, -2],
          i4: [1, 2, 3],
          i8: [9007199254740993n, -1n],
          t: TEXTS,
          n: ['1.50', '-0.01', null],
          f: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5],
          b: [true, false, null],
          d: ['2024-02-29', '9999-12-31', '0001-01-01'],
          tz: [1_704_067_200_123_456n, -1n],
          u: ['00000000-0000-0000-0000-000000000001'],
          j: ['{"a": [1, 2]}', 'null'],
        },
        { id: 2, i2: [], i4: [], i8: [], t: [], n: [], f: [], b: [], d: [], tz: [], u: [], j: [] },
        {
          id: 3,
          i2: null,
          i4: null,
          i8: null,
          t: null,
          n: null,
          f: null,
          b: null,
          d: null,
          tz: null,
          u: null,
          j: null,
        },
        {
          id: 4,
          i2: [null],
          i4: [null],
          i8: [null],
          t: [null],
          n: [null],
          f: [null],
          b: [null],
          d: [null],
          tz: [null],
          u: [null],
          j: [null],
        },
      ]);
    });

    it(`fails a multi-dimensional array or one not indexed from 1, naming the column (${path})`, async () => {
      for (const sql of [`SELECT '{{1,2},{3,4}}'::int[] AS grid`, `SELECT '[0:1]={5,6}'::int[] AS grid`]) {
        await expect(fileOf(source, sql, path)).rejects.toMatchObject({
          code: 'query-failed',
          message: expect.stringMatching(
            /Column "grid": the PostgreSQL array .* (has more than one dimension|does not start at index 1); .*"grid"::text/,
          ),
        });
      }
      // What the message suggests: the array's text, as a string column.
      const file = await duck.file(await fileOf(source, `SELECT '[0:1]={5,6}'::int[]::text AS grid`, path));
      expect(await duck.rows(file)).toEqual([{ grid: '[0:1]={5,6}' }]);
    });

    it(`writes numeric(19..38)[] as exact DECIMAL lists, wider ones as lists of text (${path})`, async () => {
      const file = await duck.file(
        await fileOf(
          source,
          `SELECT '{1234567890123456789012345678.0123456789,NULL,-0.0000000001}'::numeric(38,10)[] AS d38,
                  '{1.5}'::numeric(50,2)[] AS d50, '{1.5,NULL}'::numeric[] AS free`,
          path,
        ),
      );
      expect((await duck.describe(file)).map((c) => c.type)).toEqual([
        'DECIMAL(38,10)[]',
        'VARCHAR[]',
        'VARCHAR[]',
      ]);
      expect(await duck.rows(file, { select: 'd38::VARCHAR[] AS d38, d50, free' })).toEqual([
        {
          d38: ['1234567890123456789012345678.0123456789', null, '-0.0000000001'],
          d50: ['1.50'],
          free: ['1.5', null],
        },
      ]);
    });

    it(`writes many rows of lists exactly (${path})`, async () => {
      const file = await duck.file(await fileOf(source, MANY_ROWS, path));
      expect(await duck.query(SUMMARY(file))).toEqual([EXPECTED_SUMMARY]);
    });
  }

  it('writes column batches of lists over several pages and row groups', async () => {
    const cursor = await source.query({ sql: MANY_ROWS, params: [], columnar: true });
    const writer = new ParquetWriter(cursor.columns.map(toParquetColumn), {
      pageSize: 16_384,
      rowGroupSize: 20_000,
      compression: 'snappy',
    });
    const parts: Uint8Array[] = [];
    for await (const batch of cursor.columnBatches!(5000)) parts.push(...writer.writeColumns(batch));
    parts.push(...writer.finish());
    const file = await duck.file(parts);
    const chunks = await duck.metadata(file);
    expect(new Set(chunks.map((c) => c.rowGroup)).size).toBe(3);
    expect(await duck.query(SUMMARY(file))).toEqual([EXPECTED_SUMMARY]);
    expect(await duck.rows(file, { where: 'id IN (10, 11, 12, 49999)', orderBy: 'id' })).toEqual([
      { id: 10, nums: null, tags: ['tag-3', 'xxxxxxxxxx'] },
      { id: 11, nums: [], tags: ['tag-4', 'xxxxxxxxxxx'] },
      { id: 12, nums: [12, null, 24], tags: ['tag-5', 'xxxxxxxxxxxx'] },
      { id: 49999, nums: [49999, null, 99998], tags: ['tag-5', 'x'.repeat(49)] },
    ]);
  });
});

const MANY_ROWS = `SELECT g AS id,
    CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 1 THEN '{}'::int[] ELSE ARRAY[g, NULL, g * 2] END AS nums,
    ARRAY['tag-' || (g % 7), repeat('x', g % 50)] AS tags
  FROM generate_series(1, 50000) g`;

const SUMMARY = (file: string) => `SELECT count(*) AS n, count(nums) AS lists, sum(len(nums)) AS elements,
    sum(list_sum(nums)) AS total, sum(len(list_filter(nums, x -> x IS NULL))) AS null_elements,
    sum(len(tags[2])) AS tag_chars FROM '${file}'`;

// 5000 NULL lists, 5000 empty ones, 40000 of 3 elements (the middle one NULL) summing to 3g.
const EXPECTED_SUMMARY = {
  n: 50_000n,
  lists: 45_000n,
  elements: 120_000n,
  total: 3n * (1_250_025_000n - 125_025_000n - 124_980_000n),
  null_elements: 40_000n,
  tag_chars: 1_225_000n,
};

function toParquetColumn(column: Column): ParquetColumn {
  return column.element
    ? { name: column.name, type: 'list', element: { type: column.element.type } }
    : { name: column.name, type: column.type };
}
