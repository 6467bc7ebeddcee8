import { type Column, columnBatchToRows, decimalText } from '@backhaul/core';
import { describe, expect, it } from 'vitest';

/** Little-endian bytes of each value, as a source lays out a vector's data. */
const int32 = (...values: number[]) =>
  Buffer.concat(values.map((v) => Buffer.from(new Int32Array([v]).buffer)));
const int64 = (...values: bigint[]) =>
  Buffer.concat(values.map((v) => Buffer.from(new BigInt64Array([v]).buffer)));
const float64 = (...values: number[]) =>
  Buffer.concat(values.map((v) => Buffer.from(new Float64Array([v]).buffer)));
const prefixed = (...values: (string | Buffer)[]) =>
  Buffer.concat(
    values.map((v) => {
      const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      return Buffer.concat([int32(bytes.length), bytes]);
    }),
  );

describe('column batches → rows', () => {
  const columns: Column[] = [
    { name: 'b', type: 'boolean', nullable: true },
    { name: 'i', type: 'int32', nullable: true },
    { name: 'l', type: 'int64', nullable: true },
    { name: 'f', type: 'float64', nullable: true },
    { name: 'd', type: 'date', nullable: true },
    { name: 't', type: 'timestamp', nullable: true },
    { name: 'm', type: 'decimal', nullable: true, precision: 12, scale: 2 },
    { name: 'w', type: 'decimal', nullable: true, precision: 30, scale: 4 },
    { name: 's', type: 'string', nullable: true },
    { name: 'j', type: 'json', nullable: true },
    { name: 'x', type: 'binary', nullable: true },
  ];

  it('reads every type, in row order, with NULL where the validity bit is clear', () => {
    // Three rows; row 1 is NULL in every column but the last.
    const skipRow1 = new Uint8Array([0b101]);
    const rows = columnBatchToRows(columns, {
      rowCount: 3,
      vectors: [
        { data: Buffer.from([1, 0]), valueCount: 2, validity: skipRow1 },
        { data: int32(-7, 2147483647), valueCount: 2, validity: skipRow1 },
        { data: int64(42n, 9007199254740993n), valueCount: 2, validity: skipRow1 },
        { data: float64(0.1, Number.NaN), valueCount: 2, validity: skipRow1 },
        { data: int32(0, -1), valueCount: 2, validity: skipRow1 },
        { data: int64(1_704_067_200_123_456n, -1n), valueCount: 2, validity: skipRow1 },
        { data: int64(1250n, -5n), valueCount: 2, validity: skipRow1 },
        { data: prefixed('12345678901234567890.1234', '-0.0001'), valueCount: 2, validity: skipRow1 },
        { data: prefixed('héllo', ''), valueCount: 2, validity: skipRow1 },
        { data: prefixed('{"a":1}', 'null'), valueCount: 2, validity: skipRow1 },
        {
          data: prefixed(Buffer.from([0, 255]), Buffer.alloc(0), Buffer.from([7])),
          valueCount: 3,
          validity: undefined,
        },
      ],
    });
    expect(rows).toEqual([
      [
        true,
        -7,
        42,
        0.1,
        new Date('1970-01-01T00:00:00Z'),
        '2024-01-01T00:00:00.123456Z',
        '12.50',
        '12345678901234567890.1234',
        'héllo',
        '{"a":1}',
        Buffer.from([0, 255]),
      ],
      [null, null, null, null, null, null, null, null, null, null, Buffer.alloc(0)],
      [
        false,
        2147483647,
        9007199254740993n,
        Number.NaN,
        new Date('1969-12-31T00:00:00Z'),
        // Exact to the microsecond, before 1970 too.
        '1969-12-31T23:59:59.999999Z',
        '-0.05',
        '-0.0001',
        '',
        'null',
        Buffer.from([7]),
      ],
    ]);
  });

  it('binary values are copies, not views of the vector', () => {
    const data = prefixed(Buffer.from([1, 2, 3]));
    const [[value]] = columnBatchToRows([columns[10]!], {
      rowCount: 1,
      vectors: [{ data, valueCount: 1, validity: undefined }],
    }) as [[Uint8Array]];
    data[4] = 99;
    expect([...value]).toEqual([1, 2, 3]);
  });

  it('says which column has no vector', () => {
    expect(() => columnBatchToRows(columns.slice(0, 2), { rowCount: 0, vectors: [] })).toThrow(/column "b"/);
  });

  it('decimal text keeps the scale, the sign and leading zeros', () => {
    expect(decimalText(1250n, 2)).toBe('12.50');
    expect(decimalText(-5n, 2)).toBe('-0.05');
    expect(decimalText(0n, 3)).toBe('0.000');
    expect(decimalText(-123n, 0)).toBe('-123');
  });
});
