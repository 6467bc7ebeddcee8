import { BackhaulError, type RowValue } from '@backhaul/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteDataSource } from '../src/index.js';
import { tempDatabase } from './temp-database.js';

async function readAll(
  source: ReturnType<typeof createSqliteDataSource>,
  sql: string,
  extra: { params?: (string | number | null)[]; maxRows?: number; timeoutMs?: number } = {},
) {
  const cursor = await source.query({
    sql,
    params: extra.params ?? [],
    maxRows: extra.maxRows,
    timeoutMs: extra.timeoutMs,
  });
  const rows: RowValue[][] = [];
  for await (const batch of cursor.batches(100)) rows.push(...batch);
  await cursor.close();
  return { columns: cursor.columns, rows };
}

describe('SQLite data source: declared types map to column types and values round-trip', () => {
  let database: { filename: string; cleanup(): Promise<void> };
  let source: ReturnType<typeof createSqliteDataSource>;

  beforeAll(() => {
    database = tempDatabase((db) => {
      db.exec(`CREATE TABLE things (
        id INTEGER, big BIGINT, price NUMERIC(10,2), ratio REAL, name VARCHAR(20), data BLOB, ok BOOLEAN,
        day DATE, at DATETIME, at_ms TIMESTAMP, doc JSON, wide DECIMAL(30,4)
      )`);
      const insert = db.prepare('INSERT INTO things VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      insert.safeIntegers(true);
      insert.run(
        1n,
        9007199254740993n, // 2^53 + 1: not representable as a JS number
        12.34,
        0.5,
        'alpha',
        Buffer.from([1, 2, 3]),
        1n,
        '2024-02-29',
        '2024-02-29 13:14:15',
        1709212455000n,
        '{"a":[1,2]}',
        '12345678901234567890.1234',
      );
      insert.run(2n, null, null, null, null, null, null, null, null, null, null, null);
    });
    source = createSqliteDataSource({ filename: database.filename });
  });
  afterAll(async () => {
    await source.close();
    await database.cleanup();
  });

  it('maps INTEGER/BIGINT → int64, NUMERIC(p,s) → decimal, REAL → float64, VARCHAR → string, BLOB → binary, BOOLEAN, DATE, DATETIME/TIMESTAMP, JSON', async () => {
    const { columns } = await readAll(source, 'SELECT * FROM things');
    expect(columns.map((c) => [c.name, c.type])).toEqual([
      ['id', 'int64'],
      ['big', 'int64'],
      ['price', 'decimal'],
      ['ratio', 'float64'],
      ['name', 'string'],
      ['data', 'binary'],
      ['ok', 'boolean'],
      ['day', 'date'],
      ['at', 'timestamp'],
      ['at_ms', 'timestamp'],
      ['doc', 'json'],
      ['wide', 'decimal'],
    ]);
    expect(columns[2]).toMatchObject({ precision: 10, scale: 2 });
  });

  it('keeps int64 beyond 2^53 exact as bigint, narrows safe integers to numbers, timestamps as µs text, JSON as its text', async () => {
    const { rows } = await readAll(source, 'SELECT * FROM things ORDER BY id');
    const [first, second] = rows;
    expect(first![0]).toBe(1);
    expect(first![1]).toBe(9007199254740993n);
    expect(first![2]).toBe('12.34'); // decimals as exact text, as every source gives them
    expect(first![4]).toBe('alpha');
    expect(Buffer.from(first![5] as Uint8Array)).toEqual(Buffer.from([1, 2, 3]));
    expect(first![6]).toBe(true);
    expect((first![7] as Date).toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(first![8]).toBe('2024-02-29T13:14:15.000000Z');
    expect(first![9]).toBe('2024-02-29T13:14:15.000000Z'); // epoch milliseconds
    expect(first![10]).toBe('{"a":[1,2]}'); // JSON text as stored, never re-serialised
    expect(second!.slice(1)).toEqual(Array(11).fill(null));
  });

  it('infers the type of expression columns from their first non-null value', async () => {
    const { columns, rows } = await readAll(
      source,
      'SELECT count(*) AS n, avg(ratio) AS mean, NULL AS empty, upper(name) AS shout FROM things',
    );
    expect(columns.map((c) => c.type)).toEqual(['int64', 'float64', 'string', 'string']);
    expect(rows).toEqual([[2, 0.5, null, 'ALPHA']]);
  });

  it('binds parameters and enforces maxRows', async () => {
    const many = await readAll(
      source,
      'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) SELECT i FROM n',
      {
        maxRows: 123,
      },
    );
    expect(many.rows).toHaveLength(123);
    const one = await readAll(source, 'SELECT name FROM things WHERE id = ?', { params: [1] });
    expect(one.rows).toEqual([['alpha']]);
  });

  it("refuses a write statement with 'query-failed', and the database is opened read-only", async () => {
    for (const sql of ['DELETE FROM things', 'INSERT INTO things (id) VALUES (3)', 'CREATE TABLE x (a)']) {
      const error = await source.query({ sql, params: [] }).catch((e: unknown) => e);
      expect(BackhaulError.isInstance(error), sql).toBe(true);
      expect((error as BackhaulError).code).toBe('query-failed');
    }
    const { rows } = await readAll(source, 'SELECT count(*) FROM things');
    expect(rows).toEqual([[2]]);
  });

  it('stops a query that runs past timeoutMs with a timeout error (checked between batches)', async () => {
    const cursor = await source.query({
      sql: 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n',
      params: [],
      timeoutMs: 50,
    });
    let error: unknown;
    try {
      for await (const _ of cursor.batches(10_000)) {
        // keep reading until the deadline
      }
    } catch (e) {
      error = e;
    }
    await cursor.close();
    expect(BackhaulError.isInstance(error) && error.code).toBe('timeout');
  });
});
