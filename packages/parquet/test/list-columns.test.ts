/**
 * List columns: the standard three-level LIST with repetition and definition levels, read back by
 * hyparquet (levels, nested NULLs) and DuckDB (types, values, statistics, several pages and row groups).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../../../test/support/duckdb-reader.js';
import {
  type ParquetColumn,
  type ParquetColumnVector,
  ParquetWriter,
  type ParquetWriterOptions,
} from '../src/index.js';
import { concat, metadataOf, pageHeaders, read, readRaw } from './read-back.js';

const columns: ParquetColumn[] = [
  { name: 'id', type: 'int32', nullable: false },
  { name: 'nums', type: 'list', element: { type: 'int32' } },
  { name: 'tags', type: 'list', element: { type: 'string' } },
];

function encode(rows: unknown[][], options: ParquetWriterOptions = {}, cols = columns): ArrayBuffer {
  const writer = new ParquetWriter(cols, options);
  return concat([...writer.write(rows), ...writer.finish()]);
}

async function encodeZstd(
  rows: unknown[][],
  options: ParquetWriterOptions,
  cols = columns,
): Promise<ArrayBuffer> {
  const writer = new ParquetWriter(cols, { ...options, compression: 'zstd' });
  return concat([...(await writer.writeAsync(rows)), ...(await writer.finishAsync())]);
}

/** A NULL list, an empty list, NULL elements, and lists of one and several elements. */
const NESTED: unknown[][] = [
  [0, null, null],
  [1, [], []],
  [2, [null], [null, 'a']],
  [3, [7], ['b', null, 'c,"d"{}']],
  [4, [1, 2, 3], ['']],
];

describe('list columns', () => {
  it('writes the three-level LIST schema, with the leaf path and levels readers expect', async () => {
    const file = encode(NESTED);
    const meta = metadataOf(file);
    expect(meta.schema.map((e) => [e.name, e.repetition_type, e.num_children, e.converted_type])).toEqual([
      ['schema', undefined, 3, undefined],
      ['id', 'REQUIRED', undefined, undefined],
      ['nums', 'OPTIONAL', 1, 'LIST'],
      ['list', 'REPEATED', 1, undefined],
      ['element', 'OPTIONAL', undefined, undefined],
      ['tags', 'OPTIONAL', 1, 'LIST'],
      ['list', 'REPEATED', 1, undefined],
      ['element', 'OPTIONAL', undefined, 'UTF8'],
    ]);
    const chunks = meta.row_groups[0]!.columns.map((c) => c.meta_data!);
    expect(chunks.map((c) => [c.path_in_schema, c.num_values, c.statistics?.null_count])).toEqual([
      [['id'], 5n, 0n],
      // nums: 1 + 1 + 1 + 1 + 3 slots, of which the NULL list, the empty list and the NULL element have no value.
      [['nums', 'list', 'element'], 7n, 3n],
      [['tags', 'list', 'element'], 8n, 4n],
    ]);
    expect(await read(file)).toEqual([
      { id: 0, nums: null, tags: null },
      { id: 1, nums: [], tags: [] },
      { id: 2, nums: [null], tags: [null, 'a'] },
      { id: 3, nums: [7], tags: ['b', null, 'c,"d"{}'] },
      { id: 4, nums: [1, 2, 3], tags: [''] },
    ]);
  });

  it('gives the same file from column vectors as from rows', () => {
    const vector = (counts: (number | null)[], elements: ParquetColumnVector): ParquetColumnVector => {
      const present = counts.filter((c) => c !== null);
      const data = new Uint8Array(4 * present.length);
      present.forEach((c, k) => {
        new DataView(data.buffer).setUint32(4 * k, c, true);
      });
      const validity = new Uint8Array(1);
      counts.forEach((c, r) => {
        if (c !== null) validity[0]! |= 1 << r;
      });
      return { data, valueCount: present.length, validity, elements };
    };
    const ints = (values: number[]) => {
      const data = new Uint8Array(4 * values.length);
      values.forEach((v, k) => {
        new DataView(data.buffer).setInt32(4 * k, v, true);
      });
      return data;
    };
    const text = (values: string[]) =>
      Buffer.concat(
        values.map((v) => {
          const bytes = Buffer.from(v);
          const out = Buffer.alloc(4 + bytes.length);
          out.writeUInt32LE(bytes.length, 0);
          bytes.copy(out, 4);
          return out;
        }),
      );
    const writer = new ParquetWriter(columns, { createdBy: 'test' });
    writer.writeColumns({
      rowCount: 5,
      vectors: [
        { data: ints([0, 1, 2, 3, 4]), valueCount: 5, validity: undefined },
        // elements of nums: [null], [7], [1, 2, 3] → 5 elements, the first NULL
        vector([null, 0, 1, 1, 3], {
          data: ints([7, 1, 2, 3]),
          valueCount: 4,
          validity: Uint8Array.of(0b11110),
        }),
        // elements of tags: [null, 'a'], ['b', null, 'c,"d"{}'], [''] → 6 elements
        vector([null, 0, 2, 3, 1], {
          data: text(['a', 'b', 'c,"d"{}', '']),
          valueCount: 4,
          validity: Uint8Array.of(0b110110),
        }),
      ],
    });
    const fromVectors = concat(writer.finish());
    expect(Buffer.from(fromVectors)).toEqual(Buffer.from(encode(NESTED, { createdBy: 'test' })));
  });

  it('refuses a list vector whose counts and elements disagree, naming the column', () => {
    const writer = new ParquetWriter([{ name: 'nums', type: 'list', element: { type: 'int32' } }]);
    const counts = new Uint8Array(4);
    new DataView(counts.buffer).setUint32(0, 2, true);
    expect(() =>
      writer.writeColumns({
        rowCount: 1,
        vectors: [
          {
            data: counts,
            valueCount: 1,
            validity: undefined,
            elements: { data: new Uint8Array(4), valueCount: 2, validity: undefined },
          },
        ],
      }),
    ).toThrow(/"nums" \(list\).*elements: data has 4 bytes, 2 values of 4 bytes need 8/);
  });

  it('refuses a value that is not an array, naming the row, and keeps the rows before it', async () => {
    const writer = new ParquetWriter(columns);
    expect(() =>
      writer.write([
        [0, [1], ['a']],
        [1, 'not a list', []],
      ]),
    ).toThrow(/"nums" \(list\), row 1 .*expected an array/);
    expect(() => writer.write([[2, [1, 'x'], []]])).toThrow(/"nums" \(list\), row 1 .*32-bit integer/);
    writer.write([[3, [3], ['c']]]);
    expect(await read(concat(writer.finish()))).toEqual([
      { id: 0, nums: [1], tags: ['a'] },
      { id: 3, nums: [3], tags: ['c'] },
    ]);
  });

  it('keeps a required list apart: an empty list but no NULL', async () => {
    const cols: ParquetColumn[] = [{ name: 'xs', type: 'list', nullable: false, element: { type: 'int64' } }];
    const file = encode([[[]], [[1n, null]]], {}, cols);
    expect(metadataOf(file).schema[1]).toMatchObject({ name: 'xs', repetition_type: 'REQUIRED' });
    expect(await readRaw(file)).toEqual([{ xs: [] }, { xs: [1n, null] }]);
    const writer = new ParquetWriter(cols);
    expect(() => writer.write([[null]])).toThrow(/NULL in a required/);
  });

  it('cuts pages only between rows, and every page and row group reads back', async () => {
    const rows = Array.from({ length: 30_000 }, (_, i) => [
      i,
      i % 9 === 0 ? null : Array.from({ length: i % 5 }, (_, k) => (k === 2 ? null : i * 10 + k)),
      i % 13 === 0 ? [] : [`tag-${i % 40}`, `long text ${i}`.repeat(i % 3)],
    ]);
    // snappy: the codec hyparquet reads (DuckDB reads the zstd files below).
    const file = encode(rows, { pageSize: 4096, rowGroupSize: 12_000, compression: 'snappy' });
    const headers = pageHeaders(file);
    const numsPages = headers.get('nums.list.element')!.filter((h) => h.type === 'DATA_PAGE');
    expect(numsPages.length).toBeGreaterThan(10);
    expect(metadataOf(file).row_groups).toHaveLength(3);
    const back = await read(file);
    expect(back).toHaveLength(30_000);
    back.forEach((row, i) => {
      const want = rows[i]!;
      expect(row.nums).toEqual(want[1]);
      expect(row.tags).toEqual(want[2]);
    });
  });
});

describe('list columns in DuckDB', () => {
  let duck: DuckDbReader;
  beforeAll(async () => {
    duck = await openDuckDb();
  });
  afterAll(() => duck.close());

  it('reads LIST types and values, nested NULLs and statistics', async () => {
    const cols: ParquetColumn[] = [
      ...columns,
      { name: 'flags', type: 'list', element: { type: 'boolean' } },
      { name: 'amounts', type: 'list', element: { type: 'decimal', precision: 12, scale: 2 } },
      { name: 'days', type: 'list', element: { type: 'date' } },
      { name: 'floats', type: 'list', element: { type: 'float64' } },
    ];
    const rows = Array.from({ length: 20_000 }, (_, i) => [
      i,
      ...NESTED[i % 5]!.slice(1),
      i % 4 === 0 ? null : [true, null, i % 2 === 0],
      i % 6 === 0 ? [] : [`${i}.25`, null, '-0.01'],
      [i % 1000, null],
      [Number.NaN, -Infinity, i / 4],
    ]);
    const file = await duck.file(await encodeZstd(rows, { pageSize: 8192, rowGroupSize: 7000 }, cols));
    expect((await duck.describe(file)).map((c) => [c.name, c.type])).toEqual([
      ['id', 'INTEGER'],
      ['nums', 'INTEGER[]'],
      ['tags', 'VARCHAR[]'],
      ['flags', 'BOOLEAN[]'],
      ['amounts', 'DECIMAL(12,2)[]'],
      ['days', 'DATE[]'],
      ['floats', 'DOUBLE[]'],
    ]);
    const back = await duck.rows(file, {
      select: 'id, nums, tags, flags, amounts::VARCHAR[] AS amounts, days::VARCHAR[] AS days, floats',
      where: 'id % 1000 < 5 OR id = 19999',
      orderBy: 'id',
    });
    expect(back).toHaveLength(101);
    for (const row of back) {
      const i = row.id as number;
      const want = rows[i]!;
      expect(row.nums).toEqual(want[1]);
      expect(row.tags).toEqual(want[2]);
      expect(row.flags).toEqual(want[3]);
      expect(row.amounts).toEqual(i % 6 === 0 ? [] : [`${i}.25`, null, '-0.01']);
      expect(row.days).toEqual([new Date((i % 1000) * 86_400_000).toISOString().slice(0, 10), null]);
      expect(row.floats).toEqual([Number.NaN, -Infinity, i / 4]);
    }
    const stats = (await duck.metadata(file)).filter(
      (c) => c.path === 'nums, list, element' || c.path.includes('nums'),
    );
    expect(stats).toHaveLength(3);
    expect(stats.map((c) => [c.statsMinValue, c.statsMaxValue])).toEqual([
      ['1', '7'],
      ['1', '7'],
      ['1', '7'],
    ]);
    const counts = await duck.query(`SELECT count(*) AS n, sum(len(nums)) AS elements FROM '${file}'`);
    expect(counts).toEqual([{ n: 20_000n, elements: 20_000n }]);
  });
});
