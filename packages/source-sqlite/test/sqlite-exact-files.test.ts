import { BackhaulError } from '@backhaul/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../../../test/support/duckdb-reader.js';
import { fileOf, rowsOf } from '../../../test/support/source-files.js';
import { createSqliteDataSource } from '../src/index.js';
import { tempDatabase } from './temp-database.js';

// Every file is read back by DuckDB, the reference reader, through both ways the gateway writes one:
// column batches (file mode) and row batches (auto mode once a result outgrows rows).
describe('SQLite: files exact for every value, read back by DuckDB', () => {
  let database: { filename: string; cleanup(): Promise<void> };
  let source: ReturnType<typeof createSqliteDataSource>;
  let duck: DuckDbReader;

  beforeAll(async () => {
    database = tempDatabase((db) => {
      db.exec(`CREATE TABLE docs (id INTEGER, doc JSON);
        INSERT INTO docs VALUES (1, '"abc"'), (2, '[12345678901234567890123]'), (3, 'null'), (4, NULL),
          (5, '{"n": 12345678901234567890123, "s": "ü"}');
        CREATE TABLE mixed (id INTEGER, v);
        INSERT INTO mixed VALUES (1, 1), (2, 2.5), (3, 'x'), (4, NULL), (5, x'41');
        CREATE TABLE people (id INTEGER, name TEXT);
        INSERT INTO people VALUES (1, 'ada'), (2, 'bob');
        CREATE TABLE times (id INTEGER, at DATETIME);
        INSERT INTO times VALUES (1, '9999-12-31 23:59:59.999999'), (2, '1969-12-31T23:59:59.000001Z'),
          (3, '2024-03-10 12:34:56.123456');
        CREATE TABLE late (id INTEGER, v);`);
      const insert = db.prepare('INSERT INTO late VALUES (?, ?)');
      for (let i = 1; i <= 1500; i++) insert.run(i, i === 1200 ? 'text after the first 1000 rows' : i);
    });
    source = createSqliteDataSource({ filename: database.filename });
    duck = await openDuckDb();
  });
  afterAll(async () => {
    duck?.close();
    await source?.close();
    await database?.cleanup();
  });

  for (const path of ['columnar', 'rows'] as const) {
    it(`keeps JSON as the exact text SQLite holds (${path})`, async () => {
      const file = await duck.file(await fileOf(source, 'SELECT id, doc FROM docs ORDER BY id', path));
      expect((await duck.describe(file)).map((c) => c.type)).toEqual(['BIGINT', 'JSON']);
      const rows = await duck.rows(file, { select: 'id, doc::VARCHAR AS doc, doc IS NULL AS is_null' });
      expect(rows.map((r) => [r.doc, r.is_null])).toEqual([
        ['"abc"', false],
        ['[12345678901234567890123]', false],
        ['null', false], // JSON null is a value, not SQL NULL
        [null, true],
        ['{"n": 12345678901234567890123, "s": "ü"}', false],
      ]);
      // DuckDB takes every value as valid JSON (a re-serialised 'abc' would not be).
      const [{ valid }] = (await duck.rows(file, { select: 'bool_and(json_valid(doc)) AS valid' })) as [
        { valid: boolean },
      ];
      expect(valid).toBe(true);
    });

    it(`widens a column of mixed value types by one rule (${path})`, async () => {
      const sql = `SELECT v, CASE WHEN id % 2 = 0 THEN id ELSE id + 0.5 END AS half, id FROM mixed ORDER BY id`;
      const file = await duck.file(await fileOf(source, sql, path));
      expect((await duck.describe(file)).map((c) => c.type)).toEqual(['VARCHAR', 'DOUBLE', 'BIGINT']);
      const rows = await duck.rows(file, { orderBy: 'id' });
      // Integers and reals with text: each value as SQLite's CAST(… AS TEXT) gives it.
      expect(rows.map((r) => r.v)).toEqual(['1', '2.5', 'x', null, 'A']);
      expect(rows.map((r) => r.half)).toEqual([1.5, 2, 3.5, 4, 5.5]);
    });

    it(`names duplicate columns id, id_1 (${path})`, async () => {
      const sql = 'SELECT * FROM people a JOIN people b ON a.id = b.id ORDER BY a.id';
      const file = await duck.file(await fileOf(source, sql, path));
      expect((await duck.describe(file)).map((c) => c.name)).toEqual(['id', 'name', 'id_1', 'name_1']);
      expect(await duck.rows(file)).toEqual([
        { id: 1n, name: 'ada', id_1: 1n, name_1: 'ada' },
        { id: 2n, name: 'bob', id_1: 2n, name_1: 'bob' },
      ]);
    });

    it(`keeps timestamps exact to the microsecond, past 2^53 µs (${path})`, async () => {
      const file = await duck.file(await fileOf(source, 'SELECT id, at FROM times ORDER BY id', path));
      const rows = await duck.rows(file, { select: 'epoch_us("at") AS us', orderBy: 'id' });
      expect(rows.map((r) => r.us)).toEqual([253_402_300_799_999_999n, -999_999n, 1_710_074_096_123_456n]);
    });

    it(`fails with query-failed, naming the column, when a value past the first rows does not fit (${path})`, async () => {
      const attempt = fileOf(source, 'SELECT id, v FROM late ORDER BY id', path);
      await expect(attempt).rejects.toThrow(BackhaulError);
      await expect(attempt).rejects.toThrow(/column "v" holds "text after the first 1000 rows"/);
    });
  }

  it('rows mode carries the same values: JSON text, widened columns, unique names, exact timestamps', async () => {
    expect((await rowsOf(source, 'SELECT doc FROM docs ORDER BY id')).rows.map(([doc]) => doc)).toEqual([
      '"abc"',
      '[12345678901234567890123]',
      'null',
      null,
      '{"n": 12345678901234567890123, "s": "ü"}',
    ]);
    const mixed = await rowsOf(
      source,
      'SELECT v, CASE WHEN id % 2 = 0 THEN id ELSE id + 0.5 END AS half FROM mixed ORDER BY id',
    );
    expect(mixed.columns.map((c) => c.type)).toEqual(['string', 'float64']);
    expect(mixed.rows).toEqual([
      ['1', 1.5],
      ['2.5', 2],
      ['x', 3.5],
      [null, 4],
      ['A', 5.5],
    ]);
    const joined = await rowsOf(source, 'SELECT * FROM people a JOIN people b ON a.id = b.id');
    expect(joined.columns.map((c) => c.name)).toEqual(['id', 'name', 'id_1', 'name_1']);
    const times = await rowsOf(source, 'SELECT at FROM times ORDER BY id');
    expect(times.rows).toEqual([
      ['9999-12-31T23:59:59.999999Z'],
      ['1969-12-31T23:59:59.000001Z'],
      ['2024-03-10T12:34:56.123456Z'],
    ]);
    await expect(rowsOf(source, 'SELECT id, v FROM late ORDER BY id')).rejects.toThrow(/column "v"/);
  });
});
