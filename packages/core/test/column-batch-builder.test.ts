import {
  BackhaulError,
  type Column,
  ColumnBatchBuilder,
  type ColumnVectorBuilder,
  columnBatchToRows,
  columnSchema,
  microsToTimestampText,
  rowsToColumnBatch,
  timestampTextToMicros,
  uniqueColumnNames,
} from '@backhaul/core';
import { describe, expect, it } from 'vitest';

const column = (name: string, type: Column['type'], extra: Partial<Column> = {}): Column => ({
  name,
  type,
  nullable: true,
  ...extra,
});

describe('rows → column batch (what file mode writes for a source that reads rows)', () => {
  const columns = [
    column('b', 'boolean'),
    column('i', 'int32'),
    column('l', 'int64'),
    column('f', 'float64'),
    column('d', 'date'),
    column('t', 'timestamp'),
    column('m', 'decimal', { precision: 12, scale: 2 }),
    column('w', 'decimal', { precision: 30, scale: 4 }),
    column('s', 'string'),
    column('j', 'json'),
    column('x', 'binary'),
  ];

  it('round-trips every type through columnBatchToRows, exactly, NULLs included', () => {
    const rows = [
      [
        true,
        -7,
        9007199254740993n,
        0.1,
        new Date('2024-02-29T00:00:00Z'),
        '9999-12-31T23:59:59.999999Z',
        '-1234.50',
        '12345678901234567890.1234',
        'héllo ✓',
        '"abc"',
        new Uint8Array([0, 255]),
      ],
      Array(11).fill(null),
    ];
    const batch = rowsToColumnBatch(columns, rows);
    expect(batch.rowCount).toBe(2);
    expect(columnBatchToRows(columns, batch)).toEqual(rows);
  });

  it('takes Dates and epoch milliseconds for timestamps, exactly past 2^53 µs', () => {
    const rows = columnBatchToRows(
      [columns[5]!],
      rowsToColumnBatch([columns[5]!], [[new Date('9999-12-31T23:59:59.999Z')], [253402300799999]]),
    );
    // getTime() * 1000 as a double would give …59.999008: the builder multiplies as a bigint.
    expect(rows).toEqual([['9999-12-31T23:59:59.999000Z'], ['9999-12-31T23:59:59.999000Z']]);
  });

  it('refuses a value its column cannot hold with query-failed, naming the column and row', () => {
    const attempt = () => rowsToColumnBatch([columns[2]!], [[1], ['not a number']]);
    expect(attempt).toThrow(BackhaulError);
    expect(attempt).toThrow(/Column "l", row 2/);
    expect(() => rowsToColumnBatch([columns[6]!], [['1.234']])).toThrow(/decimal places/);
  });

  it('appendByteRange stores a slice of a buffer as the value appendText/appendBytes would', () => {
    const text = 'x'.repeat(60);
    const packet = new TextEncoder().encode(`..héllo ✓..${text}..`);
    const ranged = new ColumnBatchBuilder([columns[8]!, columns[10]!], 2);
    const [s, x] = ranged.columns as [ColumnVectorBuilder, ColumnVectorBuilder];
    s.appendByteRange(packet, 2, 12);
    x.appendByteRange(packet, 0, 0);
    s.appendByteRange(packet, 14, 74);
    x.appendByteRange(packet, 14, 74);
    const expected = rowsToColumnBatch(
      [columns[8]!, columns[10]!],
      [
        ['héllo ✓', new Uint8Array()],
        [text, new TextEncoder().encode(text)],
      ],
    );
    expect(ranged.batch()).toEqual(expected);
  });
});

describe('timestamp text', () => {
  it('formats and parses microseconds exactly, across the whole INT64 range of years', () => {
    for (const micros of [0n, -1n, 253_402_300_799_999_999n, -62_135_596_800_000_000n, 1n << 62n]) {
      const text = microsToTimestampText(micros);
      expect(BigInt(timestampTextToMicros(text)!), text).toBe(micros);
    }
    expect(microsToTimestampText(-1n)).toBe('1969-12-31T23:59:59.999999Z');
    expect(timestampTextToMicros('2024-01-02 03:04:05.6789+01:00')).toBe(1_704_161_045_678_900);
    expect(timestampTextToMicros('2024-02-30 00:00:00')).toBeUndefined();
  });
});

describe('unique column names', () => {
  it('keeps the first name, suffixes the next ones _1, _2… past names already taken, names empty ones', () => {
    const names = (list: string[]) => uniqueColumnNames(list.map((name) => ({ name }))).map((c) => c.name);
    expect(names(['id', 'id', 'id'])).toEqual(['id', 'id_1', 'id_2']);
    expect(names(['a', 'a', 'a_1'])).toEqual(['a', 'a_2', 'a_1']);
    expect(names(['', 'x'])).toEqual(['column_1', 'x']);
    const unique = [{ name: 'a' }, { name: 'b' }];
    expect(uniqueColumnNames(unique)).toBe(unique);
  });
});

describe('list columns', () => {
  const columns = [
    column('nums', 'list', { element: { type: 'int32' } }),
    column('tags', 'list', { element: { type: 'string' } }),
    column('amounts', 'list', { element: { type: 'decimal', precision: 12, scale: 2 } }),
  ];

  it('builds a count per non-null row and an element vector, and reads the same lists back', () => {
    const rows = [
      [
        [1, null, 3],
        ['a', 'b'],
        ['1.50', null],
      ],
      [[], [], []],
      [null, null, null],
      [[null], [''], ['-0.01']],
    ];
    const batch = rowsToColumnBatch(columns, rows);
    const nums = batch.vectors[0]!;
    expect(nums.valueCount).toBe(3); // the NULL list has no count
    expect([...new Uint32Array(nums.data.slice().buffer)]).toEqual([3, 0, 1]);
    expect(nums.validity).toEqual(Uint8Array.of(0b1011));
    expect(nums.elements).toMatchObject({ valueCount: 2, validity: Uint8Array.of(0b0101) });
    expect([...new Int32Array(nums.elements!.data.slice().buffer)]).toEqual([1, 3]);
    // Decimal elements are int64 unscaled, as a flat decimal column's values.
    expect([...new BigInt64Array(batch.vectors[2]!.elements!.data.slice().buffer)]).toEqual([150n, -1n]);
    expect(columnBatchToRows(columns, batch)).toEqual(rows);
  });

  it('refuses a value that is no array, and an element its type cannot hold, naming row and element', () => {
    expect(() => rowsToColumnBatch(columns.slice(0, 1), [[[1]], ['{1,2}']])).toThrow(
      new BackhaulError('query-failed', 'Column "nums", row 2: "{1,2}" is not a list (an array)'),
    );
    expect(() => rowsToColumnBatch(columns.slice(0, 1), [[[1, 2.5]]])).toThrow(
      new BackhaulError(
        'query-failed',
        'Column "nums", row 1, element 2 of its list: 2.5 is not a 32-bit integer',
      ),
    );
  });

  it('a list column, and only one, names its element type on the wire', () => {
    expect(columnSchema.safeParse({ name: 'xs', type: 'list', element: { type: 'int32' } }).success).toBe(
      true,
    );
    expect(columnSchema.safeParse({ name: 'xs', type: 'list' }).success).toBe(false);
    expect(columnSchema.safeParse({ name: 'xs', type: 'int32', element: { type: 'int32' } }).success).toBe(
      false,
    );
    expect(columnSchema.safeParse({ name: 'xs', type: 'list', element: { type: 'list' } }).success).toBe(
      false,
    );
  });
});
