import type { DataSource, RowValue } from '@backhaul/core';
import {
  createPostgresDataSource,
  numericColumn,
  parseDate,
  parseTimestamp,
} from '@backhaul/source-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { throughParquet } from '../../../test/support/parquet-round-trip.js';
import { adminQuery, postgresService, postgresUrl, uniqueTableName } from './postgres-service.js';

/** One column per PostgreSQL type this source maps; the value of the non-NULL row; the expected column. */
const types = [
  ['c_int2', 'smallint', '-32768', { type: 'int32' }],
  ['c_int4', 'integer', '2147483647', { type: 'int32' }],
  ['c_int8_small', 'bigint', '42', { type: 'int64' }],
  ['c_int8_big', 'bigint', '9007199254740993', { type: 'int64' }],
  ['c_int8_min', 'bigint', '-9223372036854775808', { type: 'int64' }],
  ['c_numeric_12_2', 'numeric(12,2)', '-1234567890.12', { type: 'decimal', precision: 12, scale: 2 }],
  ['c_numeric_18_6', 'numeric(18,6)', '123456789012.345678', { type: 'decimal', precision: 18, scale: 6 }],
  [
    'c_numeric_38_10',
    'numeric(38,10)',
    '1234567890123456789012345678.0123456789',
    { type: 'decimal', precision: 38, scale: 10 },
  ],
  ['c_numeric', 'numeric', '3.14159265358979323846264338327950288419', { type: 'string' }],
  ['c_float4', 'real', '1.5', { type: 'float64' }],
  ['c_float8', 'double precision', '0.1', { type: 'float64' }],
  ['c_bool', 'boolean', 'true', { type: 'boolean' }],
  ['c_text', 'text', 'héllo wörld ✓ 日本語 🚀 \'quoted\' "double"', { type: 'string' }],
  ['c_varchar', 'varchar(20)', 'ça va', { type: 'string' }],
  ['c_char', 'char(5)', 'ab', { type: 'string' }],
  ['c_bytea', 'bytea', '\\x00ff10807f', { type: 'binary' }],
  ['c_date', 'date', '2024-02-29', { type: 'date' }],
  ['c_date_old', 'date', '0044-03-15 BC', { type: 'date' }],
  ['c_time', 'time', '13:45:30.123456', { type: 'string' }],
  ['c_timestamp', 'timestamp', '2024-03-10 12:34:56.789', { type: 'timestamp' }],
  ['c_timestamptz', 'timestamptz', '2024-03-10 12:34:56.789+02', { type: 'timestamp' }],
  ['c_json', 'json', '{"a": [1, 2, {"b": null}], "u": "ü"}', { type: 'json' }],
  ['c_jsonb', 'jsonb', '{"n": 1.5, "s": "日本", "t": true}', { type: 'json' }],
  ['c_uuid', 'uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', { type: 'string' }],
  ['c_interval', 'interval', '1 day 02:03:04', { type: 'string' }],
  ['c_int_array', 'integer[]', '{1,2,3}', { type: 'list', element: { type: 'int32' } }],
  // Arrays of a type that is itself text stay PostgreSQL's text of the whole array.
  ['c_interval_array', 'interval[]', '{"1 day",NULL}', { type: 'string' }],
] as const;

// Both ways a cursor reads: rows through pg (rows mode), and DataRows straight into column vectors
// (file mode, `columnar: true`). The same values must come out of either.
for (const columnar of [false, true]) {
  postgresService.describe(
    `postgres source (${columnar ? 'columnar' : 'rows'}): every type survives the trip to Parquet`,
    () => {
      const table = uniqueTableName('types');
      let source: DataSource;
      /** Per column, the server's own text (and epoch ms for time stamps) of the non-NULL row. */
      let expected: Record<string, string | null> = {};

      beforeAll(async () => {
        await adminQuery(
          `CREATE TABLE ${table} (id int, ${types.map(([name, type]) => `${name} ${type}`).join(', ')})`,
        );
        await adminQuery(
          `INSERT INTO ${table} VALUES (1, ${types.map((_, i) => `$${i + 1}`).join(', ')}), (2, ${types.map(() => 'NULL').join(', ')})`,
          types.map(([, , value]) => value),
        );
        const texts = types.map(([name]) => `${name}::text AS ${name}`);
        const epochs = ['c_timestamp', 'c_timestamptz'].map(
          (name) => `(extract(epoch FROM ${name}) * 1000)::text AS ${name}_ms`,
        );
        const hex = "encode(c_bytea, 'hex') AS c_bytea_hex";
        expected = (
          await adminQuery(`SELECT ${[...texts, ...epochs, hex].join(', ')} FROM ${table} WHERE id = 1`)
        ).rows[0]!;
        source = createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 });
      });
      afterAll(async () => {
        await source?.close();
        await adminQuery(`DROP TABLE IF EXISTS ${table}`);
      });

      const select = () => `SELECT ${types.map(([name]) => name).join(', ')} FROM ${table} ORDER BY id`;

      it('maps each column type from the RowDescription', async () => {
        const cursor = await source.query({ sql: select(), params: [], columnar });
        await cursor.close();
        expect(cursor.columns).toEqual(
          types.map(([name, , , column]) => ({ name, nullable: true, ...column })),
        );
      });

      it('hands out exact JS values (bigint beyond 2^53, decimals as text, µs timestamp text, Dates in UTC)', async () => {
        const cursor = await source.query({ sql: select(), params: [], columnar });
        const rows: RowValue[][] = [];
        for await (const batch of cursor.batches(10)) rows.push(...batch);
        const value = (name: string) => rows[0]![types.findIndex(([n]) => n === name)];
        expect(value('c_int8_small')).toBe(42);
        expect(value('c_int8_big')).toBe(9007199254740993n);
        expect(value('c_int8_min')).toBe(-9223372036854775808n);
        expect(value('c_numeric_38_10')).toBe('1234567890123456789012345678.0123456789');
        expect(value('c_timestamp')).toBe('2024-03-10T12:34:56.789000Z');
        expect(value('c_timestamptz')).toBe('2024-03-10T10:34:56.789000Z');
        expect(value('c_date')).toEqual(new Date('2024-02-29T00:00:00Z'));
        expect(value('c_bytea')).toBeInstanceOf(Uint8Array); // a Buffer, which is a Uint8Array
        expect([...(value('c_bytea') as Uint8Array)]).toEqual([0x00, 0xff, 0x10, 0x80, 0x7f]);
        expect(rows[1]).toEqual(types.map(() => null));
      });

      it('reads back from Parquet exactly what PostgreSQL holds, and NULL as NULL', async () => {
        const { read } = await throughParquet(await source.query({ sql: select(), params: [], columnar }));
        expect(read).toHaveLength(2);
        const [row, nulls] = read as [Record<string, unknown>, Record<string, unknown>];
        for (const [name] of types) expect(nulls[name], `${name} of the NULL row`).toBeNull();

        const text = (name: string) => expected[name]!;
        for (const name of ['c_int2', 'c_int4']) expect(row[name], name).toBe(Number(text(name)));
        for (const name of ['c_int8_small', 'c_int8_big', 'c_int8_min'])
          expect(row[name], name).toBe(BigInt(text(name)));
        // hyparquet turns DECIMAL(p ≤ 18) into a double: compare at the column's scale.
        expect((row.c_numeric_12_2 as number).toFixed(2)).toBe(text('c_numeric_12_2'));
        expect((row.c_numeric_18_6 as number).toFixed(6)).toBe(Number(text('c_numeric_18_6')).toFixed(6));
        // Wider decimals and unconstrained numeric are strings: exact to the last digit.
        // DECIMAL(38, 10): hyparquet reads it as a double (exact digits: DuckDB, postgres-exact-files).
        expect(Math.abs((row.c_numeric_38_10 as number) / Number(text('c_numeric_38_10')) - 1)).toBeLessThan(
          1e-15,
        );
        expect(row.c_numeric).toBe(text('c_numeric'));
        for (const name of ['c_float4', 'c_float8']) expect(row[name], name).toBe(Number(text(name)));
        expect(row.c_bool).toBe(true);
        expect(row.c_int_array).toEqual([1, 2, 3]);
        for (const name of ['c_text', 'c_varchar', 'c_time', 'c_uuid', 'c_interval', 'c_interval_array']) {
          expect(row[name], name).toBe(text(name));
        }
        // char(n) is blank-padded on the wire; only its cast to text strips the blanks.
        expect(row.c_char).toBe(text('c_char').padEnd(5, ' '));
        expect(Buffer.from(row.c_bytea as Uint8Array).toString('hex')).toBe(text('c_bytea_hex'));
        expect((row.c_date as Date).toISOString().slice(0, 10)).toBe(text('c_date'));
        expect((row.c_date_old as Date).getUTCFullYear()).toBe(-43); // 44 BC is ISO year -43
        expect((row.c_timestamp as Date).getTime()).toBe(Number(text('c_timestamp_ms')));
        expect((row.c_timestamptz as Date).getTime()).toBe(Number(text('c_timestamptz_ms')));
        expect(row.c_json).toEqual(JSON.parse(text('c_json')));
        expect(row.c_jsonb).toEqual(JSON.parse(text('c_jsonb')));
      });

      it('a 2,000-row result with every type encodes as one file', async () => {
        const { source: rows, read } = await throughParquet(
          await source.query({
            sql: `SELECT t.* FROM ${table} t, generate_series(1, 1000) ORDER BY id`,
            params: [],
            columnar,
          }),
        );
        expect(rows).toHaveLength(2000);
        expect(read).toHaveLength(2000);
      });
    },
  );
}

describe('postgres source: numeric type modifiers and date/time text (no database)', () => {
  it('numeric(p, s) → decimal(p, s); unconstrained or unrepresentable → string', () => {
    const typmod = (p: number, s: number) => ((p << 16) | (s & 0x7ff)) + 4;
    expect(numericColumn('n', typmod(12, 2))).toMatchObject({ type: 'decimal', precision: 12, scale: 2 });
    expect(numericColumn('n', typmod(38, 10))).toMatchObject({ type: 'decimal', precision: 38, scale: 10 });
    expect(numericColumn('n', -1)).toMatchObject({ type: 'string' });
    expect(numericColumn('n', typmod(2, -3))).toMatchObject({ type: 'string' }); // PostgreSQL 15 negative scale
    expect(numericColumn('n', typmod(3, 5))).toMatchObject({ type: 'string' }); // scale above precision
    expect(numericColumn('n', typmod(100, 2))).toMatchObject({ type: 'string' }); // beyond 76 digits
  });

  it('parses dates as UTC Dates and timestamps as exact microsecond text; clamps ±infinity to 0001-01-01 … 9999-12-31', () => {
    expect(parseDate('2024-01-02')).toEqual(new Date('2024-01-02T00:00:00Z'));
    expect(parseDate('0001-01-01 BC').getUTCFullYear()).toBe(0);
    expect(parseDate('infinity').toISOString()).toBe('9999-12-31T00:00:00.000Z');
    expect(parseDate('-infinity').toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(parseTimestamp('2024-01-02 03:04:05.678901')).toBe('2024-01-02T03:04:05.678901Z');
    expect(parseTimestamp('2024-01-02 03:04:05+05:30')).toBe('2024-01-01T21:34:05.000000Z');
    expect(parseTimestamp('9999-12-31 23:59:59.999999+00')).toBe('9999-12-31T23:59:59.999999Z');
    expect(parseTimestamp('0001-01-01 00:00:00 BC')).toBe('0000-01-01T00:00:00.000000Z');
    expect(parseTimestamp('infinity')).toBe('9999-12-31T23:59:59.999999Z');
    expect(parseTimestamp('-infinity')).toBe('0001-01-01T00:00:00.000000Z');
    expect(() => parseTimestamp('01/02/2024 00:00:00')).toThrow(TypeError);
  });

  it('reads every fraction length, offset form and year range the same on the fast and the general path', () => {
    // The 4-digit-year form is rearranged as text; BC, other offsets and 5-digit years are computed.
    const cases: [string, string][] = [
      ['2024-01-02 03:04:05.6', '2024-01-02T03:04:05.600000Z'],
      ['2024-01-02 03:04:05.67+00', '2024-01-02T03:04:05.670000Z'],
      ['2024-01-02 03:04:05-08', '2024-01-02T11:04:05.000000Z'],
      ['1900-02-28 23:59:59.999-03:30:15', '1900-03-01T03:30:14.999000Z'],
      ['1969-12-31 23:59:59.999999', '1969-12-31T23:59:59.999999Z'],
      ['0099-12-31 00:00:00', '0099-12-31T00:00:00.000000Z'],
      ['12024-01-01 00:00:00+00', '+012024-01-01T00:00:00.000000Z'],
    ];
    for (const [text, iso] of cases) expect(parseTimestamp(text), text).toBe(iso);
    for (const text of [
      '2024-01-02 03:04:05.',
      '2024-01-02 03:04:05.1234567',
      '2024-01-02T03:04:05',
      '2024-1-02 00:00:00',
    ]) {
      expect(() => parseTimestamp(text), text).toThrow(TypeError);
    }
  });
});
