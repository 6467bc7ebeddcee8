import { describe, expect, it } from 'vitest';
import { type ParquetColumn, ParquetWriter } from '../src/index.js';
import { COLUMN_TYPES } from './column-types.js';
import { concat, metadataOf, read, readRaw } from './read-back.js';

function encode(columns: ParquetColumn[], rows: unknown[][], options = {}): ArrayBuffer {
  const writer = new ParquetWriter(columns, options);
  return concat([...writer.write(rows), ...writer.finish()]);
}

const utcMicros = (iso: string) => BigInt(Date.parse(iso)) * 1000n;
const utcDays = (y: number, m: number, d: number) => Date.UTC(y, m - 1, d) / 86_400_000;
const year99Days = new Date(0).setUTCFullYear(99, 11, 31) / 86_400_000;

describe('round trip through hyparquet', () => {
  it('writes every column type with the right physical and logical types', () => {
    const file = encode(
      [
        { name: 'b', type: 'boolean' },
        { name: 'i32', type: 'int32' },
        { name: 'i64', type: 'int64' },
        { name: 'f64', type: 'float64' },
        { name: 's', type: 'string' },
        { name: 'bin', type: 'binary' },
        { name: 'j', type: 'json' },
        { name: 'd', type: 'date' },
        { name: 'ts', type: 'timestamp' },
        { name: 'dec', type: 'decimal', precision: 12, scale: 3 },
        { name: 'req', type: 'int32', nullable: false },
      ],
      [[true, 1, 1n, 1.5, 'a', new Uint8Array([1]), {}, 0, new Date(0), '1.5', 7]],
      { createdBy: 'backhaul-test' },
    );
    const meta = metadataOf(file);
    expect(meta.created_by).toBe('backhaul-test');
    expect(meta.num_rows).toBe(1n);
    const [root, ...leaves] = meta.schema;
    expect(root).toMatchObject({ name: 'schema', num_children: 11 });
    const summary = leaves.map((e) => [e.name, e.type, e.repetition_type, e.converted_type, e.logical_type]);
    expect(summary).toEqual([
      ['b', 'BOOLEAN', 'OPTIONAL', undefined, undefined],
      ['i32', 'INT32', 'OPTIONAL', undefined, undefined],
      ['i64', 'INT64', 'OPTIONAL', undefined, undefined],
      ['f64', 'DOUBLE', 'OPTIONAL', undefined, undefined],
      ['s', 'BYTE_ARRAY', 'OPTIONAL', 'UTF8', { type: 'STRING' }],
      ['bin', 'BYTE_ARRAY', 'OPTIONAL', undefined, undefined],
      ['j', 'BYTE_ARRAY', 'OPTIONAL', 'JSON', { type: 'JSON' }],
      ['d', 'INT32', 'OPTIONAL', 'DATE', { type: 'DATE' }],
      [
        'ts',
        'INT64',
        'OPTIONAL',
        'TIMESTAMP_MICROS',
        { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
      ],
      ['dec', 'INT64', 'OPTIONAL', 'DECIMAL', { type: 'DECIMAL', precision: 12, scale: 3 }],
      ['req', 'INT32', 'REQUIRED', undefined, undefined],
    ]);
    expect(leaves[9]).toMatchObject({ precision: 12, scale: 3 });
    const chunk = meta.row_groups[0]?.columns[0]?.meta_data;
    expect(chunk).toMatchObject({
      type: 'BOOLEAN',
      codec: 'UNCOMPRESSED',
      path_in_schema: ['b'],
      num_values: 1n,
      data_page_offset: 4n,
      encodings: ['PLAIN', 'RLE'],
    });
    expect(chunk?.total_compressed_size).toBe(chunk?.total_uncompressed_size);
  });

  it('round-trips NULL in every nullable column, and reports null_count', async () => {
    const columns: ParquetColumn[] = COLUMN_TYPES.map((type) => ({ name: type, type }));
    const rows = [
      [true, 1, 2n, 3.5, 'x', new Uint8Array([9]), { k: 'v' }, 10, 1000, '4.25'],
      columns.map(() => null),
      columns.map(() => undefined),
    ];
    const file = encode(columns, rows);
    const out = await readRaw(file);
    expect(out[0]).toEqual({
      boolean: true,
      int32: 1,
      int64: 2n,
      float64: 3.5,
      string: 'x', // annotated STRING, so decoded even with utf8: false
      binary: new Uint8Array([9]),
      json: { k: 'v' },
      date: 10,
      timestamp: 1_000_000n,
      decimal: 4.25,
    });
    for (const row of out.slice(1)) for (const column of columns) expect(row[column.name]).toBeNull();
    const nullCounts = metadataOf(file).row_groups[0]?.columns.map(
      (c) => c.meta_data?.statistics?.null_count,
    );
    expect(nullCounts).toEqual(columns.map(() => 2n));
  });

  it('strings: unicode, empty, long, lone surrogates', async () => {
    const long = `${'ü'.repeat(70_000)}€`; // past the exact-measure threshold
    const values = [
      'héllo',
      '日本語テキスト',
      '👍🏽 emoji',
      '',
      'a'.repeat(70),
      long,
      'bad \ud800 surrogate',
      'x',
    ];
    const file = encode(
      [{ name: 's', type: 'string' }],
      values.map((v) => [v]),
    );
    const out = await read(file);
    expect(out.map((r) => r.s)).toEqual([...values.slice(0, 6), 'bad \ufffd surrogate', 'x']);
  });

  it('int32 and int64 edges, including int64 beyond 2^53', async () => {
    const file = encode(
      [
        { name: 'i32', type: 'int32' },
        { name: 'i64', type: 'int64' },
      ],
      [
        [-2147483648, 2n ** 63n - 1n],
        [2147483647, -(2n ** 63n)],
        [-1, -1],
        [0, 2 ** 53 + 2], // a number past 2^53 that is still an exact integer
        [-7, -(2 ** 40) - 3],
        [123, '9007199254740993'], // BIGINT as a decimal string, as the pg driver returns it
        [null, 2 ** 32],
      ],
    );
    const out = await read(file);
    expect(out.map((r) => r.i32)).toEqual([-2147483648, 2147483647, -1, 0, -7, 123, null]);
    expect(out.map((r) => r.i64)).toEqual([
      2n ** 63n - 1n,
      -(2n ** 63n),
      -1n,
      2n ** 53n + 2n,
      -(2n ** 40n) - 3n,
      9007199254740993n,
      2n ** 32n,
    ]);
  });

  it('float64 edges', async () => {
    const values = [-0, 1e-300, -1.7976931348623157e308, Number.POSITIVE_INFINITY, 0.1 + 0.2];
    const out = await read(
      encode([{ name: 'f', type: 'float64' }], [...values.map((v) => [v]), [Number.NaN]]),
    );
    expect(out.slice(0, 5).map((r) => r.f)).toEqual(values);
    expect(Object.is(out[0]?.f, -0)).toBe(true);
    expect(out[5]?.f).toBeNaN();
  });

  it('booleans in long runs with NULLs (bit packing crosses bytes)', async () => {
    const rows = Array.from({ length: 1003 }, (_, i) => [i % 7 === 0 ? null : i % 3 === 0 || i % 5 === 1]);
    const out = await read(encode([{ name: 'b', type: 'boolean' }], rows));
    expect(out.map((r) => r.b)).toEqual(rows.map((r) => r[0]));
    const allTrue = Array.from({ length: 77 }, () => [1]);
    const out2 = await read(encode([{ name: 'b', type: 'boolean', nullable: false }], allTrue));
    expect(out2.every((r) => r.b === true)).toBe(true);
    expect(out2).toHaveLength(77);
  });

  it('decimals are exact: strings, numbers and bigints', async () => {
    const file = encode(
      [{ name: 'd', type: 'decimal', precision: 9, scale: 2 }],
      [
        ['-12345.67'],
        ['0.01'],
        [0.1],
        ['+7'],
        [12n],
        ['1e2'],
        ['-0.005'],
        [1.005],
        ['9999999.99'],
        ['.5'],
        [-3],
      ],
    );
    const out = await read(file);
    expect(out.map((r) => r.d)).toEqual([-12345.67, 0.01, 0.1, 7, 12, 100, -0.01, 1.01, 9999999.99, 0.5, -3]);
  });

  it('dates from day numbers, Date objects and ISO strings', async () => {
    const file = encode(
      [{ name: 'd', type: 'date' }],
      [
        [0],
        [-1],
        ['2024-02-29'],
        ['1900-01-01'],
        ['0099-12-31'], // Date.UTC would read year 99 as 1999
        [new Date(Date.UTC(2024, 0, 15, 23, 59))],
        [new Date(Date.UTC(1969, 11, 31, 12))], // pre-epoch with a time: still that day
        [19_000],
      ],
    );
    const out = await readRaw(file);
    expect(out.map((r) => r.d)).toEqual([
      0,
      -1,
      utcDays(2024, 2, 29),
      utcDays(1900, 1, 1),
      year99Days,
      utcDays(2024, 1, 15),
      -1,
      19_000,
    ]);
    const dates = await read(file);
    expect(dates[2]?.d).toEqual(new Date('2024-02-29T00:00:00.000Z'));
  });

  it('timestamps keep the instant to the microsecond', async () => {
    const file = encode(
      [{ name: 't', type: 'timestamp' }],
      [
        [new Date('2024-01-02T03:04:05.678Z')],
        [1_700_000_000_123],
        [1.5],
        ['2024-01-02T03:04:05.123456Z'],
        ['2024-01-02 03:04:05.123456+02:00'],
        ['2024-01-02T03:04:05'], // no offset: UTC, not the machine's local time
        ['2024-01-02'],
        [new Date('1969-07-20T20:17:40Z')],
        ['2024-01-02T03:04:05.1234569-0530'],
      ],
    );
    const raw = await readRaw(file);
    expect(raw.map((r) => r.t)).toEqual([
      utcMicros('2024-01-02T03:04:05.678Z'),
      1_700_000_000_123_000n,
      1500n,
      utcMicros('2024-01-02T03:04:05Z') + 123_456n,
      utcMicros('2024-01-02T01:04:05Z') + 123_456n,
      utcMicros('2024-01-02T03:04:05Z'),
      utcMicros('2024-01-02T00:00:00Z'),
      utcMicros('1969-07-20T20:17:40Z'),
      utcMicros('2024-01-02T08:34:05Z') + 123_456n,
    ]);
    const asDates = await read(file);
    expect(asDates[0]?.t).toEqual(new Date('2024-01-02T03:04:05.678Z'));
  });

  it('json and binary', async () => {
    const file = encode(
      [
        { name: 'j', type: 'json' },
        { name: 'bin', type: 'binary', nullable: false },
      ],
      [
        [{ a: [1, 2, { b: 'ü' }] }, Buffer.from('hello')],
        ['{"already":"json"}', new Uint8Array(0)],
        [[1, 'two', null], new Uint8Array([0, 255, 128]).buffer],
        [42, new Uint8Array(300).fill(7)],
      ],
    );
    const out = await readRaw(file);
    expect(out.map((r) => r.j)).toEqual([
      { a: [1, 2, { b: 'ü' }] },
      { already: 'json' },
      [1, 'two', null],
      42,
    ]);
    expect(out.map((r) => Array.from(r.bin as Uint8Array))).toEqual([
      [...Buffer.from('hello')],
      [],
      [0, 255, 128],
      Array(300).fill(7),
    ]);
  });

  it('required columns carry no definition levels and read back the same', async () => {
    const columns: ParquetColumn[] = [
      { name: 'id', type: 'int64', nullable: false },
      { name: 'name', type: 'string', nullable: false },
      { name: 'note', type: 'string' },
    ];
    const rows = Array.from({ length: 50 }, (_, i) => [BigInt(i), `n${i}`, i % 2 ? null : `note ${i}`]);
    const required = encode(columns, rows);
    const out = await read(required);
    expect(out.map((r) => [r.id, r.name, r.note])).toEqual(rows);
    const sizes = metadataOf(required).row_groups[0]?.columns.map((c) =>
      Number(c.meta_data?.total_uncompressed_size),
    );
    const nullableSizes = metadataOf(
      encode(
        columns.map((c) => ({ ...c, nullable: true })),
        rows,
      ),
    ).row_groups[0]?.columns.map((c) => Number(c.meta_data?.total_uncompressed_size));
    // The nullable twin of a column pays for its 4-byte length prefix plus the RLE run.
    expect(nullableSizes![0]! - sizes![0]!).toBeGreaterThanOrEqual(6);
  });
});
