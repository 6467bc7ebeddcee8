import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  type ColumnBatch,
  columnBatchToRows,
  type DataSource,
  type QueryRequest,
  rowsToColumnBatch,
} from '@backhaul/core';
import { expectBackhaulError } from '@backhaul/core/testing';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../../../test/support/duckdb-reader.js';
import { fileOf } from '../../../test/support/source-files.js';
import { BatchDecoder, isUtf8, planColumns, type RowPacket } from '../src/mysql-column-decoding.js';
import { adminQuery, mysqlService, mysqlUrl, uniqueTableName } from './mysql-service.js';

/** Every type of docs/type-mapping.md's MySQL table, with the values whose decoding differs. */
const columns = [
  ['c_tinyint', 'TINYINT', ['-128', '127', '0']],
  ['c_bool', 'BOOLEAN', ['1', '0', '5']],
  ['c_smallint', 'SMALLINT', ['-32768', '32767', '7']],
  ['c_mediumint', 'MEDIUMINT', ['8388607', '-8388608', '0']],
  ['c_int', 'INT', ['-2147483648', '2147483647', '1']],
  ['c_int_zerofill', 'INT(8) ZEROFILL', ['42', '0', '99999999']],
  ['c_int_unsigned', 'INT UNSIGNED', ['4294967295', '0', '1']],
  ['c_bigint', 'BIGINT', ['-9223372036854775808', '9223372036854775807', '9007199254740993']],
  ['c_bigint_small', 'BIGINT', ['42', '-42', '999999999999999']],
  ['c_bigint_unsigned', 'BIGINT UNSIGNED', ['18446744073709551615', '0', '9007199254740993']],
  ['c_bigint_unsigned_zf', 'BIGINT UNSIGNED ZEROFILL', ['42', '18446744073709551615', '9007199254740993']],
  ['c_decimal_5_2', 'DECIMAL(5,2)', ['-999.99', '0.01', '0']],
  ['c_decimal_12_2', 'DECIMAL(12,2)', ['-1234567890.12', '1.5', '-0.05']],
  ['c_decimal_18_6', 'DECIMAL(18,6) UNSIGNED', ['123456789012.345678', '999999999999.999999', '0']],
  ['c_decimal_18_0', 'DECIMAL(18,0)', ['-999999999999999999', '123456789012345678', '1']],
  ['c_decimal_zf', 'DECIMAL(8,3) ZEROFILL', ['1.5', '12345.678', '0']],
  ['c_decimal_38_10', 'DECIMAL(38,10)', ['1234567890123456789012345678.0123456789', '-0.0000000001', '0']],
  [
    'c_decimal_65_30',
    'DECIMAL(65,30)',
    ['-12345678901234567890123456789012345.123456789012345678901234567890', '1', '0'],
  ],
  ['c_float', 'FLOAT', ['1.5', '-3.40282e38', '1.17549e-38']],
  ['c_double', 'DOUBLE', ['0.1', '1.7976931348623157e308', '9999999999999999']],
  ['c_double_sum', 'DOUBLE', ['0.30000000000000004', '-2.2250738585072014e-308', '123456789.0123456']],
  ['c_varchar', 'VARCHAR(100)', ['héllo wörld ✓ 日本語 🚀', '\'quoted\' "double"', '']],
  ['c_text', 'TEXT', ['ça va\nnew line', 'x'.repeat(300), '\u0000nul']],
  ['c_latin1', 'VARCHAR(20) CHARACTER SET latin1', ['façade', 'naïve', 'ÿ']],
  ['c_char', 'CHAR(5)', ['ab', 'abcde', '']],
  ['c_enum', "ENUM('small','large')", ['large', 'small', 'large']],
  ['c_set', "SET('a','b','c')", ['a,c', '', 'b']],
  ['c_blob', 'BLOB', ['\u0000\u00ff\u0010', '', 'bytes']],
  ['c_binary', 'BINARY(4)', ['ab', '\u00ff\u00fe\u00fd\u00fc', '']],
  ['c_varbinary', 'VARBINARY(300)', ['raw', 'y'.repeat(260), '\u00c3']],
  ['c_bit', 'BIT(10)', ["b'1010101010'", "b'0'", "b'1111111111'"]],
  ['c_date', 'DATE', ['2024-02-29', '0000-00-00', '2024-02-31']],
  ['c_date_edges', 'DATE', ['0001-01-01', '9999-12-31', '2024-00-10']],
  [
    'c_datetime',
    'DATETIME(6)',
    ['9999-12-31 23:59:59.999999', '0000-00-00 00:00:00', '1000-01-01 00:00:00.000001'],
  ],
  ['c_datetime0', 'DATETIME', ['2024-03-10 12:34:56', '1970-01-01 00:00:00', '1969-12-31 23:59:59']],
  [
    'c_timestamp',
    'TIMESTAMP(3) NULL',
    ['2024-03-10 12:34:56.789', '1970-01-01 00:00:01', '2038-01-19 03:14:07.999'],
  ],
  ['c_time', 'TIME(6)', ['-838:59:59.000000', '12:34:56.5', '00:00:00']],
  ['c_year', 'YEAR', ['2024', '1901', '2155']],
  ['c_json', 'JSON', ['{"a": [1, 2, {"b": null}], "u": "ü"}', '"abc"', '12345678901234567890']],
  [
    'c_uuid',
    'UUID',
    [
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '00000000-0000-0000-0000-000000000000',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
    ],
  ],
  ['c_inet6', 'INET6', ['::1', '2001:db8::ff00:42:8329', '::ffff:192.0.2.1']],
  ['c_point', 'POINT', ['POINT(1 2)', 'POINT(-1.5 0)', 'POINT(0 0)']],
] as const;

/** SQL for a value of a column: functions for bits and points, bound parameters for the rest. */
function valueSql(type: string, value: string): { sql: string; param?: string } {
  if (type.startsWith('BIT')) return { sql: value };
  if (type === 'POINT') return { sql: `ST_GeomFromText('${value}')` };
  return { sql: '?', param: value };
}

/** The same query read both ways, in batches of `batchSize`: the row path's rows as column batches, and the columnar path's. */
async function bothPaths(
  source: DataSource,
  sql: string,
  batchSize: number,
  request: Partial<QueryRequest> = {},
) {
  const rowCursor = await source.query({ sql, params: [], ...request });
  const fromRows: ColumnBatch[] = [];
  for await (const rows of rowCursor.batches(batchSize))
    fromRows.push(rowsToColumnBatch(rowCursor.columns, rows));
  const columnCursor = await source.query({ sql, params: [], ...request, columnar: true });
  expect(columnCursor.columnBatches).toBeTypeOf('function');
  const columnar: ColumnBatch[] = [];
  for await (const batch of columnCursor.columnBatches!(batchSize)) columnar.push(batch);
  expect(columnCursor.columns).toEqual(rowCursor.columns);
  return { columns: columnCursor.columns, fromRows: fromRows.map(bytesOf), columnar: columnar.map(bytesOf) };
}

/** A batch's bytes as text: compared at once, where a deep comparison of typed arrays goes byte by byte. */
function bytesOf(batch: ColumnBatch) {
  return {
    rowCount: batch.rowCount,
    vectors: batch.vectors.map((v) => ({
      valueCount: v.valueCount,
      data: Buffer.from(v.data).toString('hex'),
      validity: v.validity && Buffer.from(v.validity).toString('hex'),
    })),
  };
}

mysqlService.describe('mysql source: the columnar reader gives the row path’s values, byte for byte', () => {
  const table = uniqueTableName('columnar');
  let source: DataSource;
  let duck: DuckDbReader;
  const select = () => `SELECT id, ${columns.map(([name]) => name).join(', ')} FROM ${table} ORDER BY id`;

  beforeAll(async () => {
    await adminQuery(
      `CREATE TABLE ${table} (id INT, ${columns.map(([name, type]) => `${name} ${type}`).join(', ')})`,
    );
    const params: string[] = [];
    const rows = [0, 1, 2].map((row) => {
      const cells = columns.map(([, type, values]) => {
        const { sql, param } = valueSql(type, values[row]!);
        if (param !== undefined) params.push(param);
        return sql;
      });
      return `(${row + 1}, ${cells.join(', ')})`;
    });
    // Zero dates and 2024-02-31 need a permissive sql_mode; TIMESTAMP is stored and shown in UTC.
    await adminQuery(
      `SET time_zone = '+00:00', sql_mode = 'ALLOW_INVALID_DATES'; INSERT INTO ${table} VALUES ${rows.join(', ')}, (4, ${columns.map(() => 'NULL').join(', ')})`,
      params,
    );
    source = createMysqlDataSource({ uri: mysqlUrl, poolSize: 2 });
    duck = await openDuckDb();
  });
  afterAll(async () => {
    duck?.close();
    await source?.close();
    await adminQuery(`DROP TABLE IF EXISTS ${table}`);
  });

  it('every type, NULLs and edge values: the same vectors in batches of 1 and of 1000', async () => {
    for (const batchSize of [1, 1000]) {
      const { fromRows, columnar } = await bothPaths(source, select(), batchSize);
      expect(columnar.map((b) => b.rowCount)).toEqual(batchSize === 1 ? [1, 1, 1, 1] : [4]);
      expect(columnar).toEqual(fromRows);
    }
  });

  it('expressions: sums, literals, NULL, CONCAT, duplicate names, casts', async () => {
    const sql = `SELECT id, id, c_decimal_12_2 + 1 AS d, SUM(c_decimal_5_2) OVER () AS total, 1.5 AS lit,
        NULL AS nothing, CONCAT(c_varchar, '!') AS c, CAST(c_bigint AS CHAR) AS big_text,
        c_double / 2 AS half, c_json AS c_json, JSON_OBJECT('k', c_int) AS obj, c_date + INTERVAL 1 DAY AS next_day
      FROM ${table} ORDER BY id`;
    const { columns: names, fromRows, columnar } = await bothPaths(source, sql, 3);
    expect(names.map((c) => c.name).slice(0, 2)).toEqual(['id', 'id_1']);
    expect(columnar).toEqual(fromRows);
  });

  it('parameters are escaped on the columnar path as on the row path', async () => {
    const params = ["it's; DROP TABLE x -- ", 42, true, null, 'héllo'];
    const { fromRows, columnar } = await bothPaths(
      source,
      'SELECT ? AS s, ? AS n, ? AS b, ? AS z, ? AS u',
      10,
      {
        params,
      },
    );
    expect(columnar.map((b) => b.rowCount)).toEqual([1]);
    expect(columnar).toEqual(fromRows);
  });

  it('an empty result: the columns, no batch', async () => {
    const {
      columns: empty,
      fromRows,
      columnar,
    } = await bothPaths(source, `${select().replace('ORDER BY', 'WHERE 1 = 0 ORDER BY')}`, 10);
    expect(empty).toHaveLength(columns.length + 1);
    expect(columnar).toEqual([]);
    expect(fromRows).toEqual([]);
  });

  it('many batches: 25,000 rows of mixed types in batches of 1,000, the last one short', async () => {
    const sql = `SELECT seq, seq * 1000000007 AS big, CONCAT('row ', seq) AS label, seq / 7 AS ratio,
        IF(seq % 5 = 0, NULL, DATE '2020-01-01' + INTERVAL seq DAY) AS day,
        TIMESTAMP '2020-01-01 00:00:00' + INTERVAL seq SECOND AS at, seq % 2 = 0 AS even
      FROM seq_1_to_25500`;
    const { fromRows, columnar } = await bothPaths(source, sql, 1000);
    expect(columnar.map((b) => b.rowCount)).toEqual([...Array<number>(25).fill(1000), 500]);
    expect(columnar).toEqual(fromRows);
  });

  it('maxRows caps the columnar path too: no more rows than asked, whatever the batch size', async () => {
    for (const batchSize of [1, 7, 1000]) {
      const cursor = await source.query({
        sql: 'SELECT seq FROM seq_1_to_100000',
        params: [],
        maxRows: 250,
        columnar: true,
      });
      let rows = 0;
      for await (const batch of cursor.columnBatches!(batchSize)) rows += batch.rowCount;
      expect(rows).toBe(250);
    }
    const limited = await source.query({
      sql: 'SELECT seq FROM seq_1_to_100000 LIMIT 5000',
      params: [],
      maxRows: 30,
      columnar: true,
    });
    const sizes: number[] = [];
    for await (const batch of limited.columnBatches!(100)) sizes.push(batch.rowCount);
    expect(sizes).toEqual([30]);
  });

  it('rows asked of a columnar cursor hold the row path’s values', async () => {
    const rowCursor = await source.query({ sql: select(), params: [] });
    const expected = [];
    for await (const rows of rowCursor.batches(2)) expected.push(...rows);
    const columnCursor = await source.query({ sql: select(), params: [], columnar: true });
    const actual = [];
    for await (const rows of columnCursor.batches(2)) actual.push(...rows);
    // As values of their columns: decimals come back in their canonical text, bytes as Uint8Array.
    const columns = columnCursor.columns;
    expect(bytesOf(rowsToColumnBatch(columns, actual))).toEqual(
      bytesOf(rowsToColumnBatch(columns, expected)),
    );
    expect(actual).toHaveLength(4);
  });

  it('the file written from column batches reads back in DuckDB the same as the row path’s file, and exact', async () => {
    const columnarFile = await duck.file(await fileOf(source, select(), 'columnar'));
    const rowFile = await duck.file(await fileOf(source, select(), 'rows'));
    const read = (file: string) =>
      duck.rows(file, {
        select: `* REPLACE (CAST(c_decimal_38_10 AS VARCHAR) AS c_decimal_38_10, CAST(c_bigint_unsigned AS VARCHAR) AS c_bigint_unsigned, epoch_us(c_datetime) AS c_datetime)`,
        orderBy: 'id',
      });
    const rows = await read(columnarFile);
    expect(rows).toEqual(await read(rowFile));
    expect(rows.map((r) => r.c_bigint_unsigned)).toEqual([
      '18446744073709551615',
      '0',
      '9007199254740993',
      null,
    ]);
    expect(rows.map((r) => r.c_decimal_38_10)).toEqual([
      '1234567890123456789012345678.0123456789',
      '-0.0000000001',
      '0.0000000000',
      null,
    ]);
    expect(rows.map((r) => r.c_datetime)).toEqual([
      253_402_300_799_999_999n,
      null,
      -30_610_224_000_000_000n + 1n,
      null,
    ]);
    expect(rows.map((r) => r.c_decimal_18_0)).toEqual([
      expect.anything(),
      expect.anything(),
      expect.anything(),
      null,
    ]);
  });

  it('a value the column cannot hold fails the columnar query as it fails the row path’s file, and the pool goes on', async () => {
    const bad = uniqueTableName('columnar_bad');
    await adminQuery(
      `CREATE TABLE ${bad} (id INT, at DATETIME); SET sql_mode = 'ALLOW_INVALID_DATES'; INSERT INTO ${bad} VALUES (1, '2024-01-01 00:00:00'), (2, '2024-02-31 10:00:00')`,
    );
    try {
      const single = createMysqlDataSource({ uri: mysqlUrl, poolSize: 1 });
      const sql = `SELECT id, at FROM ${bad} ORDER BY id`;
      const rowFailure = await expectBackhaulError(async () => {
        const cursor = await single.query({ sql, params: [] });
        for await (const rows of cursor.batches(10)) rowsToColumnBatch(cursor.columns, rows);
      });
      const columnarFailure = await expectBackhaulError(async () => {
        const cursor = await single.query({ sql, params: [], columnar: true });
        for await (const _ of cursor.columnBatches!(10)) {
          // read on
        }
      });
      expect(columnarFailure.code).toBe('query-failed');
      expect(columnarFailure.message).toBe(rowFailure.message);
      const after = await single.query({ sql: 'SELECT 1 AS one', params: [], columnar: true });
      const batches = [];
      for await (const batch of after.columnBatches!(10)) batches.push(batch);
      expect(batches.map((b) => b.rowCount)).toEqual([1]);
      await single.close();
    } finally {
      await adminQuery(`DROP TABLE IF EXISTS ${bad}`);
    }
  });
});

mysqlService.describe('mysql source: a columnar query stops like a row query', () => {
  let source: DataSource;
  beforeAll(() => {
    // A pool of 1: a connection the columnar cursor leaked would hang the next query.
    source = createMysqlDataSource({ uri: mysqlUrl, poolSize: 1, statementTimeoutMs: 10_000 });
  });
  afterAll(async () => {
    await source?.close();
  });

  const running = async (marker: string) => {
    const rows = await adminQuery<{ n: number }[]>(
      `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE '%${marker}%'`,
    );
    return Number(rows[0]!.n);
  };

  it('an abort in the middle of a large result kills it on the server, and the connection serves the next query', async () => {
    const controller = new AbortController();
    const cursor = await source.query({
      sql: "SELECT seq, 'columnar_abort_marker' AS m FROM seq_1_to_5000000",
      params: [],
      columnar: true,
      signal: controller.signal,
    });
    let batches = 0;
    await expect(
      (async () => {
        for await (const _ of cursor.columnBatches!(1000)) {
          batches++;
          if (batches === 3) controller.abort(new Error('caller cancelled'));
        }
      })(),
    ).rejects.toThrow('caller cancelled');
    expect(batches).toBe(3);
    expect(await running('columnar_abort_marker')).toBe(0);
    const next = await source.query({ sql: 'SELECT 1 AS one', params: [], columnar: true });
    const sizes: number[] = [];
    for await (const batch of next.columnBatches!(10)) sizes.push(batch.rowCount);
    expect(sizes).toEqual([1]);
  });

  it('streams with backpressure: 200 MB of text read in batches holds a few batches, not the result', async () => {
    const memory = () => {
      const { heapUsed, arrayBuffers } = process.memoryUsage();
      return heapUsed + arrayBuffers;
    };
    const start = memory();
    let peak = start;
    let rows = 0;
    const cursor = await source.query({
      sql: 'SELECT seq, REPEAT(CHAR(65 + seq % 26), 400) AS text FROM seq_1_to_500000',
      params: [],
      columnar: true,
    });
    for await (const batch of cursor.columnBatches!(1000)) {
      expect(batch.rowCount).toBeLessThanOrEqual(1000);
      rows += batch.rowCount;
      if (rows % 20_000 === 0) peak = Math.max(peak, memory());
      // A consumer slower than the server: without backpressure the rest of the result piles up meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(rows).toBe(500_000);
    // 500,000 × 400 bytes is 200 MB: a reader that did not pause would hold most of it.
    expect(peak - start).toBeLessThan(64 * 1024 * 1024);
  });

  it('close() after the first batch, five times on a pool of 1', async () => {
    for (let round = 0; round < 5; round++) {
      const cursor = await source.query({
        sql: "SELECT seq, 'columnar_close_marker' FROM seq_1_to_2000000",
        params: [],
        columnar: true,
      });
      const iterator = cursor.columnBatches!(10)[Symbol.asyncIterator]();
      expect((await iterator.next()).value.rowCount).toBe(10);
      await cursor.close();
    }
    expect(await running('columnar_close_marker')).toBe(0);
  });

  it("the statement time limit ends a columnar query with 'timeout'", async () => {
    const failure = await expectBackhaulError(async () => {
      const cursor = await source.query({
        sql: 'SELECT SLEEP(5)',
        params: [],
        timeoutMs: 200,
        columnar: true,
      });
      for await (const _ of cursor.columnBatches!(10)) {
        // read on
      }
    });
    expect(failure.code).toBe('timeout');
  });

  it('a statement without rows is refused as on the row path', async () => {
    const failure = await expectBackhaulError(() =>
      source.query({ sql: 'DO 1', params: [], columnar: true }),
    );
    expect(failure.code).toBe('bad-request');
  });
});

describe('mysql source: UTF-8 check of copied text (no database)', () => {
  it('accepts exactly the bytes that decode and re-encode to themselves', () => {
    // A fixed pseudo-random walk over short byte strings, biased towards UTF-8 lead and continuation bytes.
    let seed = 12345;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    const interesting = [
      0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x9f,
      0x90, 0x8f,
    ];
    for (let n = 0; n < 20_000; n++) {
      const bytes = Buffer.from(
        Array.from({ length: 1 + (next() % 6) }, () => interesting[next() % interesting.length]!),
      );
      const roundTrip = Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
      expect(isUtf8(bytes, 0, bytes.length), bytes.toString('hex')).toBe(roundTrip);
    }
    expect(isUtf8(Buffer.from('héllo 🚀 日本', 'utf8'), 0, 15)).toBe(true);
  });
});

describe('mysql source: row packets the server does not send in these tests (no database)', () => {
  // mysql2's own Packet, so its cell readers are the ones the decoder calls on a real connection.
  const require = createRequire(import.meta.url);
  const Packet = require(join(dirname(require.resolve('mysql2')), 'lib/packets/packet.js')) as new (
    id: number,
    buffer: Buffer,
    start: number,
    end: number,
  ) => RowPacket;
  const packetOf = (cells: (Buffer | null)[]) => {
    const body = cells.map((cell) =>
      cell === null ? Buffer.of(0xfb) : Buffer.concat([Buffer.of(cell.length), cell]),
    );
    const bytes = Buffer.concat([Buffer.alloc(4), ...body]);
    return new Packet(0, bytes, 0, bytes.length);
  };
  const text = {
    name: 't',
    columnType: 253,
    characterSet: 224,
    encoding: 'utf8',
    flags: 0,
    decimals: 0,
    columnLength: 400,
  };
  const batchOf = (fields: object[], cells: (Buffer | null)[]) => {
    const plan = planColumns(fields as Parameters<typeof planColumns>[0]);
    const decoder = new BatchDecoder(plan, 1);
    decoder.addRow(packetOf(cells));
    return { columns: plan.columns, batch: decoder.batch() };
  };
  const decode = (fields: object[], cells: (Buffer | null)[]) => {
    const { columns, batch } = batchOf(fields, cells);
    return columnBatchToRows(columns, batch)[0];
  };

  it('text that is not valid UTF-8 is what mysql2 decodes it to, replacement characters included', () => {
    // The vector's bytes, not a decoded string: a decoder would hide invalid bytes copied as they came.
    const { batch } = batchOf([text], [Buffer.of(0xff, 0x41, 0xc3)]);
    expect(Buffer.from(batch.vectors[0]!.data.subarray(4)).toString('hex')).toBe(
      Buffer.from('\ufffdA\ufffd').toString('hex'),
    );
    expect(decode([text], [Buffer.from('ok ✓')])).toEqual(['ok ✓']);
  });

  it('a latin1 column (a connection charset other than UTF-8) goes through mysql2’s decoding', () => {
    expect(decode([{ ...text, characterSet: 8, encoding: 'latin1' }], [Buffer.of(0x66, 0xe7)])).toEqual([
      'fç',
    ]);
  });

  it('a row with fewer cells than columns, or more, fails instead of shifting values', () => {
    expect(() => decode([text, text], [Buffer.from('a')])).toThrow(/fewer cells/);
    expect(() => decode([text], [Buffer.from('a'), Buffer.from('b')])).toThrow(/do not match/);
  });
});
