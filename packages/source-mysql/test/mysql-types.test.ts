import type { DataSource, RowValue } from '@backhaul/core';
import { createMysqlDataSource, decimalColumn, parseDateTime, parseTimestamp } from '@backhaul/source-mysql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { throughParquet } from '../../../test/support/parquet-round-trip.js';
import { adminQuery, mysqlService, mysqlUrl, uniqueTableName } from './mysql-service.js';

/** One column per MariaDB/MySQL type this source maps; the value of the non-NULL row; the expected column. */
const types = [
  ['c_tinyint', 'TINYINT', '-128', { type: 'int32' }],
  ['c_bool', 'BOOLEAN', '1', { type: 'boolean' }],
  ['c_smallint', 'SMALLINT', '-32768', { type: 'int32' }],
  ['c_mediumint', 'MEDIUMINT', '8388607', { type: 'int32' }],
  ['c_int', 'INT', '-2147483648', { type: 'int32' }],
  ['c_int_unsigned', 'INT UNSIGNED', '4294967295', { type: 'int64' }],
  ['c_bigint_small', 'BIGINT', '42', { type: 'int64' }],
  ['c_bigint_big', 'BIGINT', '9007199254740993', { type: 'int64' }],
  ['c_bigint_min', 'BIGINT', '-9223372036854775808', { type: 'int64' }],
  [
    'c_bigint_unsigned',
    'BIGINT UNSIGNED',
    '18446744073709551615',
    { type: 'decimal', precision: 20, scale: 0 },
  ],
  ['c_decimal_12_2', 'DECIMAL(12,2)', '-1234567890.12', { type: 'decimal', precision: 12, scale: 2 }],
  [
    'c_decimal_18_6',
    'DECIMAL(18,6) UNSIGNED',
    '123456789012.345678',
    { type: 'decimal', precision: 18, scale: 6 },
  ],
  [
    'c_decimal_38_10',
    'DECIMAL(38,10)',
    '1234567890123456789012345678.0123456789',
    { type: 'decimal', precision: 38, scale: 10 },
  ],
  ['c_float', 'FLOAT', '1.5', { type: 'float64' }],
  ['c_double', 'DOUBLE', '0.1', { type: 'float64' }],
  ['c_varchar', 'VARCHAR(100)', 'héllo wörld ✓ 日本語 🚀 \'quoted\' "double"', { type: 'string' }],
  ['c_text', 'TEXT', 'ça va\nnew line', { type: 'string' }],
  ['c_char', 'CHAR(5)', 'ab', { type: 'string' }],
  ['c_enum', "ENUM('small','large')", 'large', { type: 'string' }],
  ['c_blob', 'BLOB', '\u0000\u00ff\u0010', { type: 'binary' }],
  ['c_varbinary', 'VARBINARY(16)', 'raw', { type: 'binary' }],
  ['c_date', 'DATE', '2024-02-29', { type: 'date' }],
  ['c_time', 'TIME(6)', '-838:59:59.000000', { type: 'string' }],
  ['c_datetime', 'DATETIME(3)', '2024-03-10 12:34:56.789', { type: 'timestamp' }],
  ['c_timestamp', 'TIMESTAMP(3) NULL', '2024-03-10 12:34:56.789', { type: 'timestamp' }],
  ['c_year', 'YEAR', '2024', { type: 'int32' }],
  ['c_json', 'JSON', '{"a": [1, 2, {"b": null}], "u": "ü"}', { type: 'json' }],
  ['c_uuid', 'UUID', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', { type: 'string' }],
] as const;

mysqlService.describe('mysql source: every type survives the trip to Parquet', () => {
  const table = uniqueTableName('types');
  let source: DataSource;
  /** Per column, the server's own text of the non-NULL row (HEX for bytes). */
  let expected: Record<string, string | null> = {};

  beforeAll(async () => {
    await adminQuery(
      `CREATE TABLE ${table} (id INT, ${types.map(([name, type]) => `${name} ${type}`).join(', ')})`,
    );
    // TIMESTAMP is stored in UTC and shown in the session's zone: make both UTC.
    await adminQuery(
      `SET time_zone = '+00:00'; INSERT INTO ${table} VALUES (1, ${types.map(() => '?').join(', ')}), (2, ${types.map(() => 'NULL').join(', ')})`,
      types.map(([, , value]) => value),
    );
    const texts = types.map(([name]) =>
      name === 'c_blob' || name === 'c_varbinary'
        ? `HEX(${name}) AS ${name}`
        : `CAST(${name} AS CHAR) AS ${name}`,
    );
    const results = await adminQuery<unknown[]>(
      `SET time_zone = '+00:00'; SELECT ${texts.join(', ')} FROM ${table} WHERE id = 1`,
    );
    expected = (results[1] as Record<string, string | null>[])[0]!;
    source = createMysqlDataSource({ uri: mysqlUrl, poolSize: 2 });
  });
  afterAll(async () => {
    await source?.close();
    await adminQuery(`DROP TABLE IF EXISTS ${table}`);
  });

  const select = () => `SELECT ${types.map(([name]) => name).join(', ')} FROM ${table} ORDER BY id`;

  it('maps each column type from the field metadata (JSON too, through MariaDB extended metadata)', async () => {
    const cursor = await source.query({ sql: select(), params: [] });
    await cursor.close();
    expect(cursor.columns).toEqual(types.map(([name, , , column]) => ({ name, nullable: true, ...column })));
  });

  it('hands out exact JS values (bigint beyond 2^53, decimals as text, Dates in UTC)', async () => {
    const cursor = await source.query({ sql: select(), params: [] });
    const rows: RowValue[][] = [];
    for await (const batch of cursor.batches(10)) rows.push(...batch);
    const value = (name: string) => rows[0]![types.findIndex(([n]) => n === name)];
    expect(value('c_bool')).toBe(true);
    expect(value('c_bigint_small')).toBe(42);
    expect(value('c_bigint_big')).toBe(9007199254740993n);
    expect(value('c_bigint_min')).toBe(-9223372036854775808n);
    expect(value('c_bigint_unsigned')).toBe('18446744073709551615');
    expect(value('c_decimal_38_10')).toBe('1234567890123456789012345678.0123456789');
    expect(value('c_datetime')).toBe('2024-03-10T12:34:56.789000Z');
    expect(value('c_timestamp')).toBe('2024-03-10T12:34:56.789000Z');
    expect(value('c_date')).toEqual(new Date('2024-02-29T00:00:00Z'));
    expect(value('c_json')).toBe(expected.c_json);
    expect(rows[1]).toEqual(types.map(() => null));
  });

  it('reads back from Parquet exactly what the server holds, and NULL as NULL', async () => {
    const { read } = await throughParquet(await source.query({ sql: select(), params: [] }));
    expect(read).toHaveLength(2);
    const [row, nulls] = read as [Record<string, unknown>, Record<string, unknown>];
    for (const [name] of types) expect(nulls[name], `${name} of the NULL row`).toBeNull();

    const text = (name: string) => expected[name]!;
    for (const name of ['c_tinyint', 'c_smallint', 'c_mediumint', 'c_int', 'c_year']) {
      expect(row[name], name).toBe(Number(text(name)));
    }
    for (const name of ['c_int_unsigned', 'c_bigint_small', 'c_bigint_big', 'c_bigint_min']) {
      expect(row[name], name).toBe(BigInt(text(name)));
    }
    expect(row.c_bool).toBe(true);
    // hyparquet turns DECIMAL(p ≤ 18) into a double: compare at the column's scale.
    expect((row.c_decimal_12_2 as number).toFixed(2)).toBe(text('c_decimal_12_2'));
    expect((row.c_decimal_18_6 as number).toFixed(6)).toBe(Number(text('c_decimal_18_6')).toFixed(6));
    // Wider decimals (and BIGINT UNSIGNED) are strings in Parquet: exact to the last digit.
    // DECIMAL(38, 10): hyparquet reads it as a double (exact digits are checked with DuckDB, mysql-exact-files).
    expect(Math.abs((row.c_decimal_38_10 as number) / Number(text('c_decimal_38_10')) - 1)).toBeLessThan(
      1e-15,
    );
    // DECIMAL(20, 0) as FIXED_LEN_BYTE_ARRAY: hyparquet reads a double (exact digits: DuckDB in mysql-exact-files).
    expect(row.c_bigint_unsigned).toBe(Number(text('c_bigint_unsigned')));
    for (const name of ['c_float', 'c_double']) expect(row[name], name).toBe(Number(text(name)));
    for (const name of ['c_varchar', 'c_text', 'c_char', 'c_enum', 'c_time', 'c_uuid']) {
      expect(row[name], name).toBe(text(name));
    }
    for (const name of ['c_blob', 'c_varbinary']) {
      expect(
        Buffer.from(row[name] as Uint8Array)
          .toString('hex')
          .toUpperCase(),
        name,
      ).toBe(text(name));
    }
    expect((row.c_date as Date).toISOString().slice(0, 10)).toBe(text('c_date'));
    for (const name of ['c_datetime', 'c_timestamp']) {
      expect((row[name] as Date).getTime(), name).toBe(
        new Date(`${text(name).replace(' ', 'T')}Z`).getTime(),
      );
    }
    expect(row.c_json).toEqual(JSON.parse(text('c_json')));
  });
});

describe('mysql source: decimal lengths and date/time text (no database)', () => {
  it('DECIMAL(p, s) from the display length: digits, point, sign', () => {
    expect(decimalColumn('d', 14, 2, false)).toMatchObject({ type: 'decimal', precision: 12, scale: 2 });
    expect(decimalColumn('d', 39, 10, true)).toMatchObject({ type: 'decimal', precision: 38, scale: 10 });
    expect(decimalColumn('d', 11, 0, false)).toMatchObject({ type: 'decimal', precision: 10, scale: 0 });
    expect(decimalColumn('d', 0, 0, false)).toMatchObject({ type: 'string' });
  });

  it('parses date/time text as UTC; zero dates become NULL', () => {
    expect(parseDateTime('2024-01-02')).toEqual(new Date('2024-01-02T00:00:00Z'));
    expect(parseTimestamp('2024-01-02 03:04:05.678901')).toBe('2024-01-02T03:04:05.678901Z');
    expect(parseTimestamp('9999-12-31 23:59:59.999999')).toBe('9999-12-31T23:59:59.999999Z');
    expect(parseTimestamp('0000-00-00 00:00:00')).toBeNull();
    expect(parseDateTime('0000-00-00')).toBeNull();
    expect(parseDateTime('0000-00-00 00:00:00')).toBeNull();
    expect((parseDateTime('0099-01-01') as Date).getUTCFullYear()).toBe(99);
  });
});
