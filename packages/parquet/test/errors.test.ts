import { describe, expect, it } from 'vitest';
import { type ParquetColumn, ParquetWriter } from '../src/index.js';
import { concat, read } from './read-back.js';

const columns: ParquetColumn[] = [
  { name: 'id', type: 'int32', nullable: false },
  { name: 'qty', type: 'int32' },
  { name: 'name', type: 'string' },
];

describe('errors', () => {
  it('a value of the wrong type throws a TypeError naming the column and row', () => {
    const writer = new ParquetWriter(columns);
    writer.write([[1, 1, 'a']]);
    expect(() =>
      writer.write([
        [2, 2, 'b'],
        [3, 'three', 'c'],
      ]),
    ).toThrow(
      new TypeError(
        'Parquet column "qty" (int32), row 2 (batch index 1): expected a 32-bit integer, got "three"',
      ),
    );
  });

  it.each([
    ['int32', 1.5],
    ['int32', 2 ** 31],
    ['int64', 1.5],
    ['int64', 2n ** 63n],
    ['int64', '12abc'],
    ['float64', '1.5'],
    ['boolean', 'true'],
    ['boolean', 2],
    ['string', 42],
    ['binary', 'text'],
    ['json', 10n],
    ['date', '2024-02-30'],
    ['date', 1.5],
    ['timestamp', 'yesterday'],
    ['timestamp', new Date(Number.NaN)],
    ['decimal', 'abc'],
    ['decimal', '1.2.3'],
    ['decimal', Number.POSITIVE_INFINITY],
  ] as const)('%s rejects %s', (type, value) => {
    const writer = new ParquetWriter([{ name: 'c', type }]);
    expect(() => writer.write([[value]])).toThrow(/^Parquet column "c" \(\w+\), row 0 \(batch index 0\): /);
  });

  it('NULL in a required column throws a clear error', () => {
    const writer = new ParquetWriter(columns);
    expect(() => writer.write([[null, 1, 'x']])).toThrow(
      'Parquet column "id" (int32), row 0 (batch index 0): NULL in a required (nullable: false) column',
    );
    expect(() =>
      writer.write([
        [1, 1, 'x'],
        [undefined, 1, 'x'],
      ]),
    ).toThrow(/column "id".*row 1.*required/);
  });

  it('a decimal that needs more digits than its precision is a RangeError', () => {
    const writer = new ParquetWriter([{ name: 'price', type: 'decimal', precision: 5, scale: 2 }]);
    expect(() => writer.write([['1000.00']])).toThrow(RangeError);
    expect(() => writer.write([['999.999']])).toThrow(/needs more than 5 digits/); // rounds up to 1000.00
    writer.write([['999.99'], ['-999.99']]);
    expect(writer.rowCount).toBe(2);
  });

  it('decimal precision above 38 is rejected up front', () => {
    expect(() => new ParquetWriter([{ name: 'big', type: 'decimal', precision: 39 }])).toThrow(
      /precision 39 is not supported \(max 38/,
    );
    expect(() => new ParquetWriter([{ name: 'd', type: 'decimal', precision: 4, scale: 5 }])).toThrow(
      RangeError,
    );
  });

  it('rejects bad schemas, options and row shapes', () => {
    expect(() => new ParquetWriter([])).toThrow(TypeError);
    expect(
      () =>
        new ParquetWriter([
          { name: 'a', type: 'int32' },
          { name: 'a', type: 'string' },
        ]),
    ).toThrow(/twice/);
    expect(() => new ParquetWriter([{ name: 'a', type: 'uuid' as never }])).toThrow(/unknown type "uuid"/);
    expect(() => new ParquetWriter(columns, { rowGroupSize: 0 })).toThrow(/rowGroupSize/);
    expect(() => new ParquetWriter(columns, { compression: 'gzip' as never })).toThrow(/compression/);
    const writer = new ParquetWriter(columns);
    expect(() => writer.write([[1, 2]])).toThrow(
      /row 0 \(batch index 0\): expected an array of 3 values, got 2 values/,
    );
  });

  it('keeps the rows before a bad one, and the file stays valid', async () => {
    const writer = new ParquetWriter(columns, { rowGroupSize: 4 });
    const rows = Array.from({ length: 10 }, (_, i) => [i, i, `n${i}`]);
    rows[9] = [9, 9, 99 as unknown as string];
    // Two full row groups are produced before row 9 fails; they are handed out by the next call.
    expect(() => writer.write(rows)).toThrow(/column "name" \(string\), row 9/);
    expect(writer.rowCount).toBe(9);
    expect(writer.bytesWritten).toBe(0);
    const pieces = writer.write([[100, null, 'after']]);
    expect(pieces).toHaveLength(2);
    pieces.push(...writer.finish());
    const file = concat(pieces);
    expect(file.byteLength).toBe(writer.bytesWritten);
    const out = await read(file);
    expect(out.map((r) => r.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 100]);
    expect(out.at(-1)).toEqual({ id: 100, qty: null, name: 'after' });
  });

  it('cannot be used after finish()', () => {
    const writer = new ParquetWriter(columns);
    writer.finish();
    expect(() => writer.write([[1, 1, 'a']])).toThrow(/finished/);
    expect(() => writer.finish()).toThrow(/finished/);
  });
});
