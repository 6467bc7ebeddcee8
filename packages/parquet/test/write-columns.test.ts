import type { ColumnBatch } from '@backhaul/core';
import { describe, expect, it } from 'vitest';
import {
  type ParquetColumn,
  type ParquetColumnBatch,
  type ParquetColumnType,
  ParquetWriter,
  type ParquetWriterOptions,
} from '../src/index.js';
import { firstDifference, rowsToColumnBatch } from './column-batches.js';
import { COLUMN_TYPES } from './column-types.js';
import { concat, metadataOf, pageHeaders, readRaw } from './read-back.js';

type Row = unknown[];

/** Every type, nullable and required; the decimal's scale is not the default so the helper must honour it. */
const columns: ParquetColumn[] = COLUMN_TYPES.flatMap((type) => {
  const decimal = type === 'decimal' ? { precision: 12, scale: 3 } : {};
  return [
    { name: type, type, ...decimal },
    { name: `${type}_required`, type, nullable: false, ...decimal },
  ];
});

const WORDS = ['', 'a', 'héllo', '日本語', '👍🏽 ok', 'plain ascii'];

function sample(type: ParquetColumnType, i: number, rand: () => number): unknown {
  switch (type) {
    case 'boolean':
      return rand() < 0.5;
    case 'int32':
      return i % 97 === 1 ? -2147483648 : i % 97 === 2 ? 2147483647 : Math.floor(rand() * 2e9) - 1e9;
    case 'int64':
      return i % 89 === 1 ? -(2n ** 63n) : BigInt(Math.floor((rand() - 0.5) * 2 ** 53)) * 1024n + 3n;
    case 'float64':
      return i % 101 === 1 ? 1e-300 : (rand() - 0.5) * 1e9;
    case 'string':
      return `${WORDS[i % WORDS.length]}${'x'.repeat(i % 17)}`;
    case 'binary':
      return Uint8Array.from({ length: i % 9 }, (_, k) => (i * 31 + k) & 0xff);
    case 'json':
      return i % 3 === 0 ? `{"raw":${i}}` : { i, tag: 'ü', list: [i % 4] };
    case 'date':
      return i % 5 === 0 ? new Date(Date.UTC(2024, 0, 1 + (i % 365))) : Math.floor(rand() * 40_000) - 20_000;
    case 'timestamp':
      return new Date(1_600_000_000_000 + Math.floor(rand() * 1e11));
    case 'decimal':
      return ((rand() - 0.5) * 2e8).toFixed(3);
  }
}

/**
 * NULLs in the first and last rows, in a long run (whole batches of NULL), scattered elsewhere, and absent
 * from one stretch (batches without a validity bitmap).
 */
function makeRows(count: number): Row[] {
  let seed = 11;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  return Array.from({ length: count }, (_, i) =>
    columns.map((column) => {
      const isNull =
        column.nullable !== false &&
        (i === 0 || i === count - 1 || (i >= 300 && i < 700) || (!(i >= 1000 && i < 1600) && rand() < 0.15));
      return isNull ? null : sample(column.type, i, rand);
    }),
  );
}

function batches(rows: Row[], size: number): ParquetColumnBatch[] {
  const out: ParquetColumnBatch[] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rowsToColumnBatch(columns, rows.slice(i, i + size)));
  return out;
}

function viaRows(rows: Row[], options: ParquetWriterOptions): Uint8Array[] {
  const writer = new ParquetWriter(columns, options);
  return [...writer.write(rows), ...writer.finish()];
}

function viaColumns(input: ParquetColumnBatch[], options: ParquetWriterOptions): Uint8Array[] {
  const writer = new ParquetWriter(columns, options);
  const pieces = input.flatMap((batch) => writer.writeColumns(batch));
  pieces.push(...writer.finish());
  expect(writer.bytesWritten).toBe(pieces.reduce((sum, p) => sum + p.length, 0));
  return pieces;
}

/** What readRaw gives back for a value written from a row. */
function expectedRaw(type: ParquetColumnType, v: unknown): unknown {
  if (v === null) return null;
  switch (type) {
    case 'int64':
      return BigInt(v as bigint);
    case 'json':
      return JSON.parse(typeof v === 'string' ? v : JSON.stringify(v));
    case 'date':
      return v instanceof Date ? v.getTime() / 86_400_000 : v;
    case 'timestamp':
      return BigInt((v as Date).getTime()) * 1000n;
    case 'decimal':
      return Number(v);
    default:
      return v;
  }
}

describe('writeColumns', () => {
  // Batch sizes that divide rowGroupSize: the row groups, and so the files, must be the same.
  it.each([
    { batch: 1, rows: 2_500, rowGroupSize: 1_000, pageSize: 100 },
    { batch: 7, rows: 5_000, rowGroupSize: 7 * 150, pageSize: 333 },
    { batch: 4096, rows: 20_000, rowGroupSize: 8192, pageSize: 1001 },
    { batch: 10_000, rows: 25_000, rowGroupSize: 10_000, pageSize: 4099 },
  ])(
    'batches of $batch give the same bytes as write() (rowGroupSize $rowGroupSize, pageSize $pageSize)',
    ({ batch, rows: count, rowGroupSize, pageSize }) => {
      const rows = makeRows(count);
      const options = { rowGroupSize, pageSize };
      const expected = viaRows(rows, options);
      const actual = viaColumns(batches(rows, batch), options);
      // Same pieces at the same time: each row group is returned by the call that completes it.
      expect(actual.map((p) => p.length)).toEqual(expected.map((p) => p.length));
      const file = concat(actual);
      expect(firstDifference(file, concat(expected))).toBe(-1);

      const groups = metadataOf(file).row_groups;
      expect(groups.length).toBe(Math.ceil(count / rowGroupSize));
      // The small page size cut every chunk into several pages, so the cuts were compared too (booleans
      // take 8 values a byte: their cuts are covered by the test below).
      const pages = pageHeaders(file);
      for (const column of columns) {
        if (column.type !== 'boolean') expect(pages.get(column.name)!.length).toBeGreaterThan(groups.length);
      }
    },
  );

  it.each([
    { batch: 7, rows: 5_000, rowGroupSize: 1_000, pageSize: 100 },
    { batch: 4096, rows: 20_000, rowGroupSize: 3_000, pageSize: 1001 },
    { batch: 10_000, rows: 25_000, rowGroupSize: 4_096, pageSize: 4099 },
  ])(
    'batches of $batch read back as the rows when row groups overshoot rowGroupSize $rowGroupSize',
    async ({ batch, rows: count, rowGroupSize, pageSize }) => {
      const rows = makeRows(count);
      const file = concat(viaColumns(batches(rows, batch), { rowGroupSize, pageSize }));
      // A row group closes after the first batch that reaches rowGroupSize.
      const perGroup = Math.ceil(rowGroupSize / batch) * batch;
      const groupRows = metadataOf(file).row_groups.map((g) => Number(g.num_rows));
      expect(groupRows).toEqual(
        Array.from({ length: Math.ceil(count / perGroup) }, (_, g) =>
          Math.min(perGroup, count - g * perGroup),
        ),
      );
      const out = await readRaw(file);
      expect(out).toHaveLength(count);
      out.forEach((record, i) => {
        const expected = Object.fromEntries(
          columns.map((column, c) => [column.name, expectedRaw(column.type, rows[i]![c])]),
        );
        expect(record, `row ${i}`).toEqual(expected);
      });
    },
  );

  it.each([1, 5, 13, 64])('packs booleans from batches of %i, pages cut mid-byte, like write()', (batch) => {
    const flags: ParquetColumn[] = [
      { name: 'b', type: 'boolean' },
      { name: 'b_required', type: 'boolean', nullable: false },
    ];
    const rows = Array.from({ length: 1000 }, (_, i) => [i % 11 === 0 ? null : (i * 7) % 3 === 1, i % 5 < 2]);
    // 3 bytes = 24 values a page, so page boundaries fall inside batches and inside bytes.
    const options = { pageSize: 3, rowGroupSize: batch * Math.ceil(400 / batch) };
    const writer = new ParquetWriter(flags, options);
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < rows.length; i += batch) {
      pieces.push(...writer.writeColumns(rowsToColumnBatch(flags, rows.slice(i, i + batch))));
    }
    pieces.push(...writer.finish());
    const reference = new ParquetWriter(flags, options);
    const file = concat(pieces);
    expect(firstDifference(file, concat([...reference.write(rows), ...reference.finish()]))).toBe(-1);
    expect(pageHeaders(file).get('b')!.length).toBeGreaterThan(30);
  });

  it('mixes with write() on one writer, even mid-page, and gives the same bytes', () => {
    const rows = makeRows(25_000);
    const options = { rowGroupSize: 10_000, pageSize: 500 };
    const writer = new ParquetWriter(columns, options);
    const pieces: Uint8Array[] = [];
    // Slices of 1, 99, 37 and 113 rows (250 in all, which divides rowGroupSize), alternating inputs.
    const sizes = [1, 99, 37, 113];
    for (let start = 0, n = 0; start < rows.length; n++) {
      const slice = rows.slice(start, start + sizes[n % sizes.length]!);
      start += slice.length;
      pieces.push(
        ...(n % 2 === 0 ? writer.write(slice) : writer.writeColumns(rowsToColumnBatch(columns, slice))),
      );
    }
    pieces.push(...writer.finish());
    expect(writer.rowCount).toBe(rows.length);
    expect(firstDifference(concat(pieces), concat(viaRows(rows, options)))).toBe(-1);
  });

  it('takes a validity bitmap with every bit set like no bitmap', () => {
    const rows = makeRows(2_000).map((row) =>
      row.map((v, c) => v ?? sample(columns[c]!.type, c, () => 0.25)),
    );
    const options = { pageSize: 300 };
    const writer = new ParquetWriter(columns, options);
    const pieces = writer.writeColumns(rowsToColumnBatch(columns, rows, { validity: 'always' }));
    pieces.push(...writer.finish());
    expect(firstDifference(concat(pieces), concat(viaRows(rows, options)))).toBe(-1);
  });

  it('writes multi-byte UTF-8, empty strings and empty binaries', async () => {
    const text: ParquetColumn[] = [
      { name: 's', type: 'string' },
      { name: 'bin', type: 'binary', nullable: false },
      { name: 'j', type: 'json' },
    ];
    const rows = [
      ['', new Uint8Array(0), '""'],
      ['héllo', Uint8Array.of(0xc3), { k: '日本語' }],
      ['日本語テキスト', new Uint8Array(0), null],
      ['👍🏽 emoji', Uint8Array.of(0, 255), ''],
      [null, new Uint8Array(0), []],
      [`${'ü'.repeat(70_000)}€`, new Uint8Array(70_000).fill(7), { long: 'é'.repeat(1000) }],
      ['', new Uint8Array(0), '{}'],
    ];
    rows[3]![2] = '"\u00e9"'; // already-serialized JSON text of a multi-byte string
    const writer = new ParquetWriter(text, { pageSize: 64 });
    const pieces = [...writer.writeColumns(rowsToColumnBatch(text, rows)), ...writer.finish()];
    const reference = new ParquetWriter(text, { pageSize: 64 });
    const file = concat(pieces);
    expect(firstDifference(file, concat([...reference.write(rows), ...reference.finish()]))).toBe(-1);
    const out = await readRaw(file);
    expect(out.map((r) => r.s)).toEqual(rows.map((r) => r[0]));
    expect(out.map((r) => r.bin)).toEqual(rows.map((r) => r[1]));
    expect(out.map((r) => r.j)).toEqual(['', { k: '日本語' }, null, 'é', [], { long: 'é'.repeat(1000) }, {}]);
  });

  it('flushes a row group once its buffered bytes reach rowGroupBytes, checked after each batch', () => {
    const wide: ParquetColumn[] = [{ name: 's', type: 'string' }];
    const writer = new ParquetWriter(wide, { rowGroupBytes: 100_000 });
    const batch = rowsToColumnBatch(
      wide,
      Array.from({ length: 30 }, () => ['z'.repeat(1000)]),
    );
    // About 30 KB a batch: the fourth reaches the 100 KB budget and closes the group.
    const returned = Array.from({ length: 8 }, () => writer.writeColumns(batch));
    expect(returned.map((pieces) => pieces.length)).toEqual([0, 0, 0, 1, 0, 0, 0, 1]);
    const file = concat([...returned.flat(), ...writer.finish()]);
    expect(metadataOf(file).row_groups.map((g) => g.num_rows)).toEqual([120n, 120n]);
  });

  it('an empty batch appends nothing', () => {
    const writer = new ParquetWriter(columns);
    expect(writer.writeColumns(rowsToColumnBatch(columns, []))).toEqual([]);
    expect(writer.rowCount).toBe(0);
    const file = concat(writer.finish());
    expect(metadataOf(file).row_groups).toEqual([]);
  });

  it('accepts a @backhaul/core ColumnBatch as it is', () => {
    // Compile-time: core's batch must stay assignable to the structural copy declared here.
    const fromCore = (batch: ColumnBatch): ParquetColumnBatch => batch;
    const batch = fromCore({
      rowCount: 1,
      vectors: [{ data: Uint8Array.of(1), valueCount: 1, validity: undefined }],
    });
    const writer = new ParquetWriter([{ name: 'b', type: 'boolean' }]);
    writer.writeColumns(batch);
    expect(writer.rowCount).toBe(1);
  });
});

describe('writeColumns rejects a malformed batch', () => {
  const small: ParquetColumn[] = [
    { name: 'id', type: 'int32', nullable: false },
    { name: 'flag', type: 'boolean' },
    { name: 'name', type: 'string' },
    { name: 'amount', type: 'decimal', precision: 10, scale: 2 },
  ];
  const good = (from: number, count: number): Row[] =>
    Array.from({ length: count }, (_, k) => {
      const i = from + k;
      return [i, i % 3 === 0 ? null : i % 2 === 0, i % 4 === 0 ? null : `név ${i}`, `${i}.25`];
    });
  type Vector = ParquetColumnBatch['vectors'][number];
  /** A good batch of rows 3..12 with one vector replaced. */
  const withVector = (column: number, change: (vector: Vector) => unknown): ParquetColumnBatch => {
    const batch = rowsToColumnBatch(small, good(3, 10));
    const vectors = [...batch.vectors];
    vectors[column] = change(vectors[column]!) as Vector;
    return { rowCount: batch.rowCount, vectors };
  };
  const bytes = (...values: number[]) => Uint8Array.from(values);

  it.each([
    {
      name: 'a decimal wider than its precision (10 digits, unscaled 10^10)',
      batch: () =>
        withVector(3, (v) => {
          const data = Buffer.from(v.data);
          data.writeBigInt64LE(10n ** 10n, 16);
          return { ...v, data };
        }),
      error: new RangeError(
        'Parquet column "amount" (decimal), batch at row 5: decimal value 2 (unscaled 10000000000) has more than 10 digits',
      ),
    },
    {
      name: 'a missing vector',
      batch: () => ({ rowCount: 10, vectors: rowsToColumnBatch(small, good(3, 10)).vectors.slice(1) }),
      error: new TypeError('Parquet column batch at row 5: expected 4 column vectors, got 3'),
    },
    {
      name: 'a negative rowCount',
      batch: () => ({ ...rowsToColumnBatch(small, []), rowCount: -1 }),
      error: new RangeError('Parquet column batch at row 5: rowCount must be a non-negative integer, got -1'),
    },
    {
      name: 'a fractional rowCount',
      batch: () => ({ ...rowsToColumnBatch(small, good(3, 10)), rowCount: 9.5 }),
      error: new RangeError(
        'Parquet column batch at row 5: rowCount must be a non-negative integer, got 9.5',
      ),
    },
    {
      name: 'no vectors array',
      batch: () => ({ rowCount: 0 }),
      error: new TypeError('Parquet column batch at row 5: expected 4 column vectors, got undefined'),
    },
    {
      name: 'a null vector',
      batch: () => withVector(2, () => null),
      error: new TypeError('Parquet column "name" (string), batch at row 5: expected a column vector'),
    },
    {
      name: 'data that is not bytes',
      batch: () => withVector(0, (v) => ({ ...v, data: [1, 2, 3] })),
      error: new TypeError('Parquet column "id" (int32), batch at row 5: vector data must be a Uint8Array'),
    },
    {
      name: 'a valueCount that disagrees with no validity',
      batch: () => withVector(0, (v) => ({ ...v, valueCount: 9 })),
      error: new RangeError(
        'Parquet column "id" (int32), batch at row 5: valueCount is 9 but 10 of the 10 rows are non-null',
      ),
    },
    {
      name: 'a valueCount that disagrees with the validity bits',
      batch: () => withVector(1, (v) => ({ ...v, valueCount: v.valueCount + 1 })),
      error: new RangeError(
        'Parquet column "flag" (boolean), batch at row 5: valueCount is 7 but 6 of the 10 rows are non-null',
      ),
    },
    {
      name: 'a validity bitmap too short for rowCount',
      batch: () => withVector(2, (v) => ({ ...v, validity: v.validity!.subarray(0, 1) })),
      error: new RangeError(
        'Parquet column "name" (string), batch at row 5: validity has 1 bytes, 10 rows need 2',
      ),
    },
    {
      name: 'a validity that is not bytes',
      batch: () => withVector(2, (v) => ({ ...v, validity: [255, 255] })),
      error: new TypeError(
        'Parquet column "name" (string), batch at row 5: validity must be a Uint8Array or undefined',
      ),
    },
    {
      name: 'a NULL in a required column',
      batch: () => withVector(0, (v) => ({ ...v, validity: bytes(0xff, 0x01), valueCount: 9 })),
      error: new TypeError(
        'Parquet column "id" (int32), batch at row 5: NULL in a required (nullable: false) column',
      ),
    },
    {
      name: 'fixed-width data one value short',
      batch: () => withVector(3, (v) => ({ ...v, data: v.data.subarray(0, v.data.length - 8) })),
      error: new RangeError(
        'Parquet column "amount" (decimal), batch at row 5: data has 72 bytes, 10 values of 8 bytes need 80',
      ),
    },
    {
      name: 'fixed-width data with a stray byte',
      batch: () => withVector(0, (v) => ({ ...v, data: Uint8Array.from([...v.data, 0]) })),
      error: new RangeError(
        'Parquet column "id" (int32), batch at row 5: data has 41 bytes, 10 values of 4 bytes need 40',
      ),
    },
    {
      name: 'a boolean byte other than 0 or 1',
      batch: () =>
        withVector(1, (v) => ({ ...v, data: Uint8Array.from(v.data, (b, k) => (k === 4 ? 2 : b)) })),
      error: new TypeError(
        'Parquet column "flag" (boolean), batch at row 5: boolean value 4 is the byte 2, expected 0 or 1',
      ),
    },
    {
      name: 'a string length running past the data',
      batch: () =>
        withVector(2, (v) => {
          const data = Uint8Array.from(v.data);
          new DataView(data.buffer).setUint32(0, 1000, true);
          return { ...v, data };
        }),
      error: new RangeError(
        'Parquet column "name" (string), batch at row 5: value 0 (1000 bytes) runs past the end of data (72 bytes)',
      ),
    },
    {
      name: 'string data ending inside a length prefix',
      batch: () => withVector(2, (v) => ({ ...v, data: v.data.subarray(0, v.data.length - 11) })),
      error: new RangeError(
        'Parquet column "name" (string), batch at row 5: data ends after 6 of 7 values (61 bytes)',
      ),
    },
    {
      name: 'string data with bytes after the last value',
      batch: () => withVector(2, (v) => ({ ...v, data: Uint8Array.from([...v.data, 0, 0, 0, 0]) })),
      error: new RangeError(
        'Parquet column "name" (string), batch at row 5: data has 4 bytes after its 7 values',
      ),
    },
  ])('$name', async ({ batch, error }) => {
    const writer = new ParquetWriter(small, { rowGroupSize: 4, pageSize: 8 });
    const reference = new ParquetWriter(small, { rowGroupSize: 4, pageSize: 8 });
    // A row group is already out and a partial one buffered when the bad batch comes.
    const before = rowsToColumnBatch(small, good(0, 3));
    const pieces = [
      ...writer.writeColumns(rowsToColumnBatch(small, good(0, 2))),
      ...writer.writeColumns(before),
    ];
    const expected = [
      ...reference.writeColumns(rowsToColumnBatch(small, good(0, 2))),
      ...reference.writeColumns(before),
    ];
    expect(writer.rowCount).toBe(5);
    expect(pieces).toHaveLength(1);

    // The message is compared exactly, and so is the class: a RangeError is not accepted for a TypeError.
    let thrown: unknown;
    try {
      writer.writeColumns(batch() as ParquetColumnBatch);
    } catch (caught) {
      thrown = caught;
    }
    expect(thrown).toEqual(error);
    expect((thrown as Error).constructor).toBe(error.constructor);
    expect(writer.rowCount).toBe(5);

    // Nothing of the bad batch was kept: the rest of the file is what a writer that never saw it writes.
    const after = rowsToColumnBatch(small, good(5, 6));
    pieces.push(...writer.writeColumns(after), ...writer.finish());
    expected.push(...reference.writeColumns(after), ...reference.finish());
    const file = concat(pieces);
    expect(firstDifference(file, concat(expected))).toBe(-1);
    const out = await readRaw(file);
    expect(out.map((r) => r.id)).toEqual([0, 1, 0, 1, 2, 5, 6, 7, 8, 9, 10]);
    expect(out.map((r) => r.name)).toEqual(
      [...good(0, 2), ...good(0, 3), ...good(5, 6)].map((row) => row[2]),
    );
  });
});
