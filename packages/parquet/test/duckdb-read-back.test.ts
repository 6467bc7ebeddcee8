/**
 * Files read back by DuckDB, the reference reader: compression, dictionary encoding, statistics and
 * row-group skipping as a data team's tools see them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../../../test/support/duckdb-reader.js';
import { encodeParquet, type ParquetColumn, ParquetWriter, type ParquetWriterOptions } from '../src/index.js';
import { PACKAGE_VERSION } from '../src/version.js';
import { concat, pageHeaders, read } from './read-back.js';

const columns: ParquetColumn[] = [
  { name: 'id', type: 'int64', nullable: false },
  { name: 'status', type: 'string' },
  { name: 'qty', type: 'int32' },
  { name: 'price', type: 'float64' },
  { name: 'amount', type: 'decimal', precision: 12, scale: 2 },
  { name: 'placed', type: 'timestamp' },
  { name: 'day', type: 'date' },
  { name: 'paid', type: 'boolean' },
  { name: 'note', type: 'string' },
];
const STATUSES = ['new', 'paid', 'shipped', 'returned'];

function orderRows(count: number, from = 0): unknown[][] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return [
      BigInt(i),
      i % 11 === 0 ? null : STATUSES[i % 4],
      i % 7 === 0 ? null : ((i * 37) % 1000) - 500,
      i % 5 === 0 ? null : i / 8,
      `${(i * 13) % 100000}.${String(i % 100).padStart(2, '0')}`,
      new Date(Date.UTC(2024, 0, 1) + i * 60_000),
      19_700 + (i % 30),
      i % 3 === 0 ? null : i % 2 === 0,
      `note ${i * 7919}`,
    ];
  });
}

async function writeAll(rows: unknown[][], options: ParquetWriterOptions): Promise<Uint8Array[]> {
  const writer = new ParquetWriter(columns, options);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < rows.length; i += 1000)
    parts.push(...(await writer.writeAsync(rows.slice(i, i + 1000))));
  parts.push(...(await writer.finishAsync()));
  return parts;
}

describe('read back by DuckDB', () => {
  let duck: DuckDbReader;
  beforeAll(async () => {
    duck = await openDuckDb();
  });
  afterAll(() => duck.close());

  const rows = orderRows(5000);
  const select =
    'id, status, qty, price, amount::VARCHAR AS amount, epoch_us(placed) AS placed, day::VARCHAR AS day, paid, note';

  it.each([
    ['none', 'UNCOMPRESSED'],
    ['snappy', 'SNAPPY'],
    ['zstd', 'ZSTD'],
  ] as const)(
    'compression %s: DuckDB reads the same values, and the chunks say %s',
    async (compression, name) => {
      const parts = await writeAll(rows, { compression, rowGroupSize: 2000 });
      const file = await duck.file(parts);
      const chunks = await duck.metadata(file);
      expect(new Set(chunks.map((chunk) => chunk.compression))).toEqual(new Set([name]));
      const reference = await duck.file(await writeAll(rows, { compression: 'none', dictionary: false }));
      expect(await duck.rows(file, { select, orderBy: 'id' })).toEqual(
        await duck.rows(reference, { select, orderBy: 'id' }),
      );
      expect((await duck.rows(file, { select: 'count(*) AS n' }))[0]?.n).toBe(5000n);
    },
  );

  it('zstd pages are smaller than snappy ones, which are smaller than none; the level is honoured', async () => {
    const sizes = async (options: ParquetWriterOptions) =>
      (await writeAll(rows, options)).reduce((sum, part) => sum + part.length, 0);
    const none = await sizes({ compression: 'none' });
    const snappy = await sizes({ compression: 'snappy' });
    const zstd = await sizes({ compression: 'zstd' });
    const zstd19 = await sizes({ compression: { codec: 'zstd', level: 19 } });
    expect(snappy).toBeLessThan(none);
    expect(zstd).toBeLessThan(snappy);
    expect(zstd19).toBeLessThan(zstd);
  });

  it('snappy works with the synchronous methods and hyparquet reads it; zstd asks for the async ones', async () => {
    const writer = new ParquetWriter(columns, { compression: 'snappy' });
    const parts = [...writer.write(rows.slice(0, 100)), ...writer.finish()];
    const back = await read(concat(parts));
    expect(back.map((row) => row.id)).toEqual(rows.slice(0, 100).map((row) => row[0]));
    const zstd = new ParquetWriter(columns, { compression: 'zstd' });
    expect(() => zstd.write(rows.slice(0, 1))).toThrow(/asynchronous; use writeAsync/);
    expect(() => new ParquetWriter(columns, { compression: { codec: 'zstd', level: 23 } })).toThrow(
      RangeError,
    );
  });

  it('dictionary-encodes low-cardinality columns and keeps distinct ones PLAIN', async () => {
    const file = await duck.file(await writeAll(rows, { compression: 'zstd' }));
    const chunks = await duck.metadata(file);
    const encodingsOf = (path: string) => chunks.find((chunk) => chunk.path === path)!;
    for (const path of ['status', 'qty', 'day']) {
      expect(encodingsOf(path).encodings, path).toContain('RLE_DICTIONARY');
      expect(encodingsOf(path).dictionaryPageOffset, path).not.toBeNull();
    }
    for (const path of ['id', 'placed', 'note', 'amount', 'paid']) {
      expect(encodingsOf(path).encodings, path).not.toContain('RLE_DICTIONARY');
      expect(encodingsOf(path).dictionaryPageOffset, path).toBeNull();
    }
    // hyparquet decodes the dictionary pages too.
    const plainFile = concat(await writeAll(rows.slice(0, 3000), { compression: 'snappy' }));
    const back = await read(plainFile);
    expect(back.map((row) => row.status)).toEqual(rows.slice(0, 3000).map((row) => row[1]));
    expect(back.map((row) => row.qty)).toEqual(rows.slice(0, 3000).map((row) => row[2]));
  });

  it('keeps a dictionary for values drawn from a pool that a 4096-value sample sees as mostly distinct', async () => {
    // 200,000 rows over 20,000 customers: the first 4096 rows hold about 3,700 distinct names, yet the
    // dictionary (10 % of the values) pays; 200,000 distinct names do not get one.
    const pool = (i: number) => `customer-${(i * 7_919) % 20_000}`;
    const customerColumns: ParquetColumn[] = [
      { name: 'customer', type: 'string', nullable: false },
      { name: 'unique_name', type: 'string', nullable: false },
    ];
    const writer = new ParquetWriter(customerColumns, { compression: 'zstd', pageSize: 256 * 1024 });
    const parts: Uint8Array[] = [];
    let seed = 7;
    const draw = () => {
      // mulberry32: uniform enough that the sample looks like draws from the whole pool
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % 20_000;
    };
    const picks: string[] = [];
    for (let batch = 0; batch < 25; batch++) {
      const batchRows = Array.from({ length: 8000 }, (_, k) => {
        const name = pool(draw());
        picks.push(name);
        return [name, `name-${batch * 8000 + k}`];
      });
      parts.push(...(await writer.writeAsync(batchRows)));
    }
    parts.push(...(await writer.finishAsync()));
    expect(new Set(picks.slice(0, 4096)).size).toBeGreaterThan(3072); // what the old fixed cut gave up on
    const file = await duck.file(parts);
    const chunks = await duck.metadata(file);
    expect(chunks.find((chunk) => chunk.path === 'customer')!.encodings).toContain('RLE_DICTIONARY');
    expect(chunks.find((chunk) => chunk.path === 'unique_name')!.encodings).not.toContain('RLE_DICTIONARY');
    const back = await duck.rows(file, {
      select: 'customer',
      orderBy: 'CAST(substr(unique_name, 6) AS INTEGER)',
    });
    expect(back.map((row) => row.customer)).toEqual(picks);
    // Page and chunk bounds of the dictionary column are the bytewise min and max DuckDB finds.
    const [bounds] = await duck.query(`SELECT min(customer) AS lo, max(customer) AS hi FROM '${file}'`);
    const customer = chunks.find((chunk) => chunk.path === 'customer')!;
    expect([customer.statsMinValue, customer.statsMaxValue]).toEqual([bounds!.lo, bounds!.hi]);
    const pages = pageHeaders(concat(parts))
      .get('customer')!
      .filter((header) => header.type === 'DATA_PAGE');
    expect(pages.length).toBeGreaterThan(1);
    let row = 0;
    for (const header of pages) {
      const count = Number(header.data_page_header!.num_values);
      const slice = picks
        .slice(row, row + count)
        .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const stats = header.data_page_header!.statistics!;
      expect(Buffer.from(stats.min_value as Uint8Array).toString()).toBe(slice[0]);
      expect(Buffer.from(stats.max_value as Uint8Array).toString()).toBe(slice.at(-1));
      row += count;
    }
  });

  it('falls back to PLAIN when the dictionary passes dictionaryPageSize', async () => {
    const file = await duck.file(await writeAll(rows, { compression: 'none', dictionaryPageSize: 16 }));
    const status = (await duck.metadata(file)).find((chunk) => chunk.path === 'status')!;
    expect(status.encodings).not.toContain('RLE_DICTIONARY');
    expect((await duck.rows(file, { select: 'status', orderBy: 'id' })).map((row) => row.status)).toEqual(
      rows.map((row) => row[1]),
    );
  });

  it('keeps min/max/null_count per chunk as DuckDB computes them, column orders and created_by', async () => {
    const file = await duck.file(await writeAll(rows, { compression: 'zstd', rowGroupSize: 2000 }));
    const chunks = await duck.metadata(file);
    const stats = (await duck.query(
      `SELECT (id // 2000)::INTEGER AS g,
              min(id)::VARCHAR AS id_min, max(id)::VARCHAR AS id_max,
              min(status) AS status_min, max(status) AS status_max, count(*) - count(status) AS status_nulls,
              min(qty)::VARCHAR AS qty_min, max(qty)::VARCHAR AS qty_max, count(*) - count(qty) AS qty_nulls,
              min(price)::VARCHAR AS price_min, max(price)::VARCHAR AS price_max,
              min(amount)::VARCHAR AS amount_min, max(amount)::VARCHAR AS amount_max,
              min(day)::VARCHAR AS day_min, max(day)::VARCHAR AS day_max,
              min(paid)::VARCHAR AS paid_min, max(paid)::VARCHAR AS paid_max
         FROM read_parquet('${file}') GROUP BY g ORDER BY g`,
    )) as Record<string, unknown>[];
    const chunk = (group: number, path: string) =>
      chunks.find((c) => c.rowGroup === group && c.path === path)!;
    for (const [g, expected] of stats.entries()) {
      expect([chunk(g, 'id').statsMinValue, chunk(g, 'id').statsMaxValue]).toEqual([
        expected.id_min,
        expected.id_max,
      ]);
      expect([chunk(g, 'status').statsMinValue, chunk(g, 'status').statsMaxValue]).toEqual([
        expected.status_min,
        expected.status_max,
      ]);
      expect(BigInt(chunk(g, 'status').statsNullCount!)).toBe(expected.status_nulls);
      expect([chunk(g, 'qty').statsMinValue, chunk(g, 'qty').statsMaxValue]).toEqual([
        expected.qty_min,
        expected.qty_max,
      ]);
      expect(BigInt(chunk(g, 'qty').statsNullCount!)).toBe(expected.qty_nulls);
      expect([chunk(g, 'price').statsMinValue, chunk(g, 'price').statsMaxValue]).toEqual([
        expected.price_min,
        expected.price_max,
      ]);
      expect([chunk(g, 'amount').statsMinValue, chunk(g, 'amount').statsMaxValue]).toEqual([
        expected.amount_min,
        expected.amount_max,
      ]);
      expect([chunk(g, 'day').statsMinValue, chunk(g, 'day').statsMaxValue]).toEqual([
        expected.day_min,
        expected.day_max,
      ]);
      expect([chunk(g, 'paid').statsMinValue, chunk(g, 'paid').statsMaxValue]).toEqual([
        expected.paid_min,
        expected.paid_max,
      ]);
    }
    const meta = await duck.fileMetadata(file);
    expect(meta.columnOrders).toHaveLength(columns.length);
    expect(meta.columnOrders[0]).toMatch(/TypeDefinedOrder/);
    expect(meta.createdBy).toMatch(
      new RegExp(`^backhaul version ${PACKAGE_VERSION.replaceAll('.', '\\.')} \\(build \\S+\\)$`),
    );
  });

  it('writes statistics in every data page header', async () => {
    const file = concat(await writeAll(rows.slice(0, 3000), { compression: 'snappy', pageSize: 4096 }));
    const headers = pageHeaders(file)
      .get('id')!
      .filter((header) => header.type === 'DATA_PAGE');
    expect(headers.length).toBeGreaterThan(2);
    let expectedMin = 0n;
    for (const header of headers) {
      const stats = header.data_page_header!.statistics!;
      const rowsInPage = BigInt(header.data_page_header!.num_values);
      const int64 = (bytes: unknown) => Buffer.from(bytes as Uint8Array).readBigInt64LE(0);
      expect(int64(stats.min_value)).toBe(expectedMin);
      expect(int64(stats.max_value)).toBe(expectedMin + rowsInPage - 1n);
      expect(stats.null_count).toBe(0n);
      expectedMin += rowsInPage;
    }
  });

  it('lets a WHERE on a sorted column skip row groups', async () => {
    const file = await duck.file(await writeAll(rows, { compression: 'zstd', rowGroupSize: 1000 }));
    expect((await duck.metadata(file)).filter((chunk) => chunk.path === 'id')).toHaveLength(5);
    expect(await duck.rowGroupsRead(file, 'id >= 4500')).toEqual([4]);
    expect(await duck.rowGroupsRead(file, 'id BETWEEN 1200 AND 2100')).toEqual([1, 2]);
    expect(await duck.rowGroupsRead(file, "placed < TIMESTAMPTZ '2024-01-01 16:00:00+00'")).toEqual([0]);
    expect(await duck.rowGroupsRead(file, 'id >= 0')).toEqual([0, 1, 2, 3, 4]);
  });

  it('encodeParquet compresses with zstd unless told otherwise', async () => {
    const parts: Uint8Array[] = [];
    for await (const part of encodeParquet(columns, [rows.slice(0, 10)])) parts.push(part);
    const file = await duck.file(parts);
    expect(new Set((await duck.metadata(file)).map((chunk) => chunk.compression))).toEqual(new Set(['ZSTD']));
  });

  it('sizes row groups by their buffered bytes', async () => {
    const file = await duck.file(await writeAll(rows, { compression: 'zstd', rowGroupBytes: 64 * 1024 }));
    const groups = (await duck.fileMetadata(file)).numRowGroups;
    expect(groups).toBeGreaterThan(2);
    expect((await duck.rows(file, { select: 'count(*) AS n' }))[0]?.n).toBe(5000n);
  });
});
