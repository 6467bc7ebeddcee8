import { describe, expect, it } from 'vitest';
import { encodeParquet, type ParquetColumn, ParquetWriter } from '../src/index.js';
import { concat, metadataOf, pageHeaders, read } from './read-back.js';

const columns: ParquetColumn[] = [
  { name: 'id', type: 'int32', nullable: false },
  { name: 'label', type: 'string' },
  { name: 'flag', type: 'boolean' },
];
const makeRows = (from: number, count: number) =>
  Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return [i, i % 5 === 0 ? null : `row ${i}`, i % 3 === 0 ? null : i % 2 === 0];
  });
const total = (parts: Uint8Array[]) => parts.reduce((sum, p) => sum + p.length, 0);

describe('streaming', () => {
  it('returns a row group as soon as it fills, and the pieces form the file', async () => {
    const writer = new ParquetWriter(columns, { rowGroupSize: 100 });
    const pieces: Uint8Array[] = [];

    const first = writer.write(makeRows(0, 99));
    expect(first).toEqual([]);
    expect(writer.bytesWritten).toBe(0);
    expect(writer.rowCount).toBe(99);

    const second = writer.write(makeRows(99, 1));
    expect(second).toHaveLength(1);
    expect(Buffer.from(second[0]!.subarray(0, 4)).toString()).toBe('PAR1');
    expect(writer.bytesWritten).toBe(total(second));
    pieces.push(...first, ...second);

    const third = writer.write(makeRows(100, 250)); // fills two more groups, buffers 50 rows
    expect(third).toHaveLength(2);
    pieces.push(...third);
    expect(writer.bytesWritten).toBe(total(pieces));

    const last = writer.finish();
    pieces.push(...last);
    expect(writer.rowCount).toBe(350);
    expect(writer.bytesWritten).toBe(total(pieces));

    const file = concat(pieces);
    expect(file.byteLength).toBe(writer.bytesWritten);
    const meta = metadataOf(file);
    expect(meta.num_rows).toBe(350n);
    expect(meta.row_groups.map((g) => g.num_rows)).toEqual([100n, 100n, 100n, 50n]);
    // Each piece write() returned ends exactly where the next row group starts.
    const groupStarts = meta.row_groups.map((g) => {
      const first = g.columns[0]?.meta_data;
      return Number(first?.dictionary_page_offset ?? first?.data_page_offset);
    });
    expect(groupStarts[0]).toBe(4);
    expect(groupStarts[1]).toBe(second[0]!.length);
    expect(groupStarts[2]).toBe(second[0]!.length + third[0]!.length);
    expect(groupStarts[3]).toBe(second[0]!.length + total(third));
    expect(meta.row_groups.map((g) => g.file_offset)).toEqual(groupStarts.map(BigInt));

    const rows = await read(file);
    expect(rows.map((r) => [r.id, r.label, r.flag])).toEqual(makeRows(0, 350));
  });

  it('an empty result is a valid file with the schema', async () => {
    const writer = new ParquetWriter(columns);
    expect(writer.write([])).toEqual([]);
    const parts = writer.finish();
    const file = concat(parts);
    expect(file.byteLength).toBe(writer.bytesWritten);
    const bytes = new Uint8Array(file);
    expect(Buffer.from(bytes.subarray(0, 4)).toString()).toBe('PAR1');
    expect(Buffer.from(bytes.subarray(-4)).toString()).toBe('PAR1');
    const meta = metadataOf(file);
    expect(meta.num_rows).toBe(0n);
    expect(meta.row_groups).toEqual([]);
    expect(meta.schema.slice(1).map((e) => [e.name, e.type, e.repetition_type])).toEqual([
      ['id', 'INT32', 'REQUIRED'],
      ['label', 'BYTE_ARRAY', 'OPTIONAL'],
      ['flag', 'BOOLEAN', 'OPTIONAL'],
    ]);
    expect(await read(file)).toEqual([]);
  });

  it('encodeParquet streams an async generator of batches', async () => {
    async function* batches() {
      for (let b = 0; b < 7; b++) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        yield makeRows(b * 40, 40);
      }
      yield [];
    }
    const pieces: Uint8Array[] = [];
    for await (const piece of encodeParquet(columns, batches(), { rowGroupSize: 64, compression: 'snappy' }))
      pieces.push(piece);
    expect(pieces.length).toBe(5 + 1); // 4 full groups of 64, then the 24-row tail, then the footer
    const file = concat(pieces);
    expect(metadataOf(file).row_groups.map((g) => Number(g.num_rows))).toEqual([64, 64, 64, 64, 24]);
    const rows = await read(file);
    expect(rows.map((r) => [r.id, r.label, r.flag])).toEqual(makeRows(0, 280));
  });

  it('encodeParquet accepts a plain iterable', async () => {
    const pieces: Uint8Array[] = [];
    for await (const piece of encodeParquet(columns, [makeRows(0, 3), makeRows(3, 2)], {
      compression: 'snappy',
    }))
      pieces.push(piece);
    expect((await read(concat(pieces))).map((r) => r.id)).toEqual([0, 1, 2, 3, 4]);
  });

  it('splits large column chunks into several pages, at any row (bits re-aligned)', async () => {
    const pageColumns: ParquetColumn[] = [
      { name: 'flag', type: 'boolean' },
      { name: 'label', type: 'string' },
      { name: 'n', type: 'int64', nullable: false },
    ];
    const rows = Array.from({ length: 3000 }, (_, i) => [
      i % 7 === 0 ? null : i % 3 === 0,
      i % 4 === 0 ? null : `value ${i} ${'x'.repeat(i % 13)}`,
      BigInt(i) * 1_000_000_007n,
    ]);
    // PLAIN pages: their sizes are what the page limit measures.
    const writer = new ParquetWriter(pageColumns, { pageSize: 1000, rowGroupSize: 2000, dictionary: false });
    const file = concat([...writer.write(rows), ...writer.finish()]);
    const pages = pageHeaders(file);
    // 2000-row group: ~25 KB of strings and 16 KB of int64 in 1000-byte pages; 1.7k boolean bits fit one page.
    expect(pages.get('label')?.length).toBeGreaterThan(20);
    expect(pages.get('n')?.length).toBeGreaterThan(20);
    expect(pages.get('flag')?.length).toBe(2);
    for (const [name, list] of pages) {
      expect(
        list.reduce((sum, h) => sum + (h.data_page_header?.num_values ?? 0), 0),
        name,
      ).toBe(3000);
      for (const h of list) {
        expect(h.type).toBe('DATA_PAGE');
        expect(h.uncompressed_page_size).toBe(h.compressed_page_size);
        expect(h.data_page_header).toMatchObject({ encoding: 'PLAIN', definition_level_encoding: 'RLE' });
        // PLAIN values never exceed the limit by more than one value.
        if (name === 'n') expect(h.uncompressed_page_size).toBeLessThanOrEqual(1000 + 8);
      }
    }
    const labelNulls = pages
      .get('label')!
      .reduce((sum, h) => sum + Number(h.data_page_header?.statistics?.null_count), 0);
    expect(labelNulls).toBe(750);
    const out = await read(file);
    expect(out.map((r) => [r.flag, r.label, r.n])).toEqual(rows);
  });

  it('a tiny page size splits boolean pages mid-byte too', async () => {
    const rows = Array.from({ length: 500 }, (_, i) => [i % 11 === 0 ? null : (i * 7) % 3 === 1]);
    const writer = new ParquetWriter([{ name: 'b', type: 'boolean' }], { pageSize: 3 });
    const file = concat([...writer.write(rows), ...writer.finish()]);
    // 3 bytes = 24 values per page, so page boundaries fall mid-byte in both the levels and the values.
    expect(pageHeaders(file).get('b')?.length).toBeGreaterThan(15);
    expect((await read(file)).map((r) => r.b)).toEqual(rows.map((r) => r[0]));
  });

  it('flushes a row group early when its buffered bytes exceed rowGroupBytes', async () => {
    const writer = new ParquetWriter([{ name: 's', type: 'string' }], { rowGroupBytes: 100_000 });
    const big = 'z'.repeat(1000);
    const pieces: Uint8Array[] = [];
    for (let b = 0; b < 10; b++) pieces.push(...writer.write(Array.from({ length: 50 }, () => [big])));
    expect(pieces.length).toBeGreaterThan(2);
    pieces.push(...writer.finish());
    const file = concat(pieces);
    const groups = metadataOf(file).row_groups;
    expect(groups.length).toBeGreaterThan(3);
    expect(groups.reduce((sum, g) => sum + Number(g.num_rows), 0)).toBe(500);
    expect((await read(file)).every((r) => r.s === big)).toBe(true);
  });

  it('many row groups and pages of mixed data match a reference', async () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const mixed: ParquetColumn[] = [
      { name: 'id', type: 'int64', nullable: false },
      { name: 'q', type: 'int32' },
      { name: 'p', type: 'float64' },
      { name: 's', type: 'string' },
      { name: 't', type: 'timestamp' },
      { name: 'ok', type: 'boolean' },
      { name: 'amt', type: 'decimal', precision: 15, scale: 2 },
    ];
    const rows = Array.from({ length: 20_000 }, (_, i) => [
      i,
      rand() < 0.1 ? null : Math.floor(rand() * 2e9) - 1e9,
      rand() < 0.1 ? null : rand() * 1e6 - 5e5,
      rand() < 0.1 ? null : `name-${i}-${'é'.repeat(i % 5)}`,
      rand() < 0.1 ? null : new Date(1_600_000_000_000 + Math.floor(rand() * 1e11)),
      rand() < 0.1 ? null : rand() < 0.5,
      rand() < 0.1 ? null : ((Math.floor(rand() * 2e9) - 1e9) / 100).toFixed(2),
    ]);
    const writer = new ParquetWriter(mixed, { rowGroupSize: 3000, pageSize: 8192 });
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < rows.length; i += 777) pieces.push(...writer.write(rows.slice(i, i + 777)));
    pieces.push(...writer.finish());
    const file = concat(pieces);
    expect(metadataOf(file).row_groups).toHaveLength(7);
    const out = await read(file);
    expect(out).toHaveLength(rows.length);
    out.forEach((r, i) => {
      const [id, q, p, s, t, ok, amt] = rows[i]!;
      expect([r.id, r.q, r.p, r.s, r.t, r.ok, r.amt]).toEqual([
        BigInt(id as number),
        q,
        p,
        s,
        t,
        ok,
        amt === null ? null : Number(amt),
      ]);
    });
  });
});
