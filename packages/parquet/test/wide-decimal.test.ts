import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../../../test/support/duckdb-reader.js';
import { decimalByteWidth, type ParquetColumn, ParquetWriter } from '../src/index.js';

describe('decimals wider than 18 digits: FIXED_LEN_BYTE_ARRAY, exact', () => {
  let duck: DuckDbReader;
  beforeAll(async () => {
    duck = await openDuckDb();
  });
  afterAll(() => duck.close());

  it('uses the fewest bytes that hold the precision', () => {
    expect([1, 18, 19, 20, 28, 38].map(decimalByteWidth)).toEqual([1, 8, 9, 9, 12, 16]);
  });

  const columns: ParquetColumn[] = [
    { name: 'id', type: 'int32', nullable: false },
    { name: 'd38', type: 'decimal', precision: 38, scale: 10 },
    { name: 'd19', type: 'decimal', precision: 19, scale: 0 },
  ];
  const values: [string | number | bigint | null, string | bigint | null][] = [
    ['9999999999999999999999999999.9999999999', '9999999999999999999'],
    ['-9999999999999999999999999999.9999999999', '-9999999999999999999'],
    ['0', 0n],
    [null, null],
    [12.5, '-1'],
    [123456789012345678901234567n, 1234567890123456789n],
    ['-0.0000000001', '42'],
    ['0.00000000005', null], // rounds half away from zero to 0.0000000001
  ];
  const expected = [
    ['9999999999999999999999999999.9999999999', '9999999999999999999'],
    ['-9999999999999999999999999999.9999999999', '-9999999999999999999'],
    ['0.0000000000', '0'],
    [null, null],
    ['12.5000000000', '-1'],
    ['123456789012345678901234567.0000000000', '1234567890123456789'],
    ['-0.0000000001', '42'],
    ['0.0000000001', null],
  ];

  it('writes rows DuckDB reads back digit for digit, typed DECIMAL(p, s), with min/max', async () => {
    const writer = new ParquetWriter(columns, { compression: 'snappy', pageSize: 64 });
    const rows = values.map(([a, b], i) => [i, a, b]);
    const file = await duck.file([...writer.write(rows), ...writer.finish()]);
    const back = await duck.rows(file, { select: 'd38::VARCHAR AS d38, d19::VARCHAR AS d19', orderBy: 'id' });
    expect(back.map((row) => [row.d38, row.d19])).toEqual(expected);
    expect((await duck.describe(file)).map((column) => column.type)).toEqual([
      'INTEGER',
      'DECIMAL(38,10)',
      'DECIMAL(19,0)',
    ]);
    const chunks = await duck.metadata(file);
    const d38 = chunks.find((chunk) => chunk.path === 'd38')!;
    expect(d38.type).toBe('FIXED_LEN_BYTE_ARRAY');
    expect([d38.statsMinValue, d38.statsMaxValue]).toEqual([
      '-9999999999999999999999999999.9999999999',
      '9999999999999999999999999999.9999999999',
    ]);
    expect(d38.statsNullCount).toBe(1);
    // A WHERE on the wide decimal is exact too.
    const hits = await duck.rows(file, {
      select: 'id',
      where: 'd38 > 12.4999999999 AND d38 < 12.5000000001',
    });
    expect(hits).toEqual([{ id: 4 }]);
  });

  it('takes column batches of big-endian bytes, like rows', async () => {
    const rowsWriter = new ParquetWriter(columns, { dictionary: false });
    const rows = values.map(([a, b], i) => [i, a, b]);
    const fromRows = Buffer.concat([...rowsWriter.write(rows), ...rowsWriter.finish()]);

    const ids = Buffer.alloc(4 * values.length);
    for (let i = 0; i < values.length; i++) ids.writeInt32LE(i, 4 * i);
    const vector = (column: number, width: number) => {
      const present = expected.map((row) => row[column]!).filter((text) => text !== null) as string[];
      const data = Buffer.alloc(present.length * width);
      present.forEach((text, k) => {
        const unscaled = BigInt(text.replace('.', ''));
        let rest = BigInt.asUintN(8 * width, unscaled);
        for (let b = width - 1; b >= 0; b--, rest >>= 8n) data[k * width + b] = Number(rest & 0xffn);
      });
      let validity = 0;
      expected.forEach((row, i) => {
        if (row[column] !== null) validity |= 1 << i;
      });
      return { data, valueCount: present.length, validity: Uint8Array.of(validity) };
    };
    const columnsWriter = new ParquetWriter(columns, { dictionary: false });
    const fromColumns = Buffer.concat([
      ...columnsWriter.writeColumns({
        rowCount: values.length,
        vectors: [{ data: ids, valueCount: values.length, validity: undefined }, vector(0, 16), vector(1, 9)],
      }),
      ...columnsWriter.finish(),
    ]);
    expect(Buffer.compare(fromColumns, fromRows)).toBe(0);

    const tooWide = Buffer.alloc(16, 0x7f); // far past 10^38
    const writer = new ParquetWriter(columns);
    expect(() =>
      writer.writeColumns({
        rowCount: 1,
        vectors: [
          { data: ids.subarray(0, 4), valueCount: 1, validity: undefined },
          { data: tooWide, valueCount: 1, validity: undefined },
          { data: Buffer.alloc(9), valueCount: 1, validity: undefined },
        ],
      }),
    ).toThrow(/more than 38 digits/);
  });

  it('refuses more than 38 digits, in the schema and in a value', () => {
    expect(() => new ParquetWriter([{ name: 'd', type: 'decimal', precision: 39, scale: 0 }])).toThrow(
      /precision 39 is not supported \(max 38/,
    );
    const writer = new ParquetWriter([{ name: 'd', type: 'decimal', precision: 20, scale: 2 }]);
    expect(() => writer.write([['1000000000000000000']])).toThrow(RangeError);
  });
});
