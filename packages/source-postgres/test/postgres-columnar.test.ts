import type { ColumnBatch, DataSource, QueryCursor } from '@backhaul/core';
import { expectBackhaulError } from '@backhaul/core/testing';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchDecoder, planColumns } from '../src/postgres-column-decoding.js';
import { MessageFramer } from '../src/postgres-wire.js';
import { adminQuery, postgresService, postgresUrl } from './postgres-service.js';

async function failsWith(work: Promise<unknown>, code: 'bad-request' | 'query-failed', message: RegExp) {
  expect((await expectBackhaulError(work, code)).message).toMatch(message);
}

async function readColumns(cursor: QueryCursor, batchSize = 1000): Promise<ColumnBatch[]> {
  const batches: ColumnBatch[] = [];
  if (!cursor.columnBatches) throw new Error('the cursor offers no column batches');
  for await (const batch of cursor.columnBatches(batchSize)) batches.push(batch);
  return batches;
}

const int64s = (data: Uint8Array) =>
  Array.from({ length: data.length / 8 }, (_, i) => Buffer.from(data).readBigInt64LE(i * 8));
const int32s = (data: Uint8Array) =>
  Array.from({ length: data.length / 4 }, (_, i) => Buffer.from(data).readInt32LE(i * 4));
/** The values of a length-prefixed vector, as UTF-8 strings. */
function texts(data: Uint8Array): string[] {
  const bytes = Buffer.from(data);
  const out: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32LE(at);
    out.push(bytes.toString('utf8', at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

postgresService.describe('postgres source, columnar: DataRows straight into column vectors', () => {
  let source: DataSource;
  beforeAll(() => {
    // One connection: every test also proves the previous one gave it back in a usable state.
    source = createPostgresDataSource({ connectionString: postgresUrl, poolSize: 1 });
  });
  afterAll(async () => {
    await source?.close();
  });

  it('keeps what the row path cannot: microseconds, and exact unscaled decimals', async () => {
    const cursor = await source.query({
      sql: `SELECT timestamptz '2024-01-01 00:00:00.123456+00' AS at,
                   timestamp '1969-12-31 23:59:59.999999' AS before_1970,
                   timestamp 'infinity' AS forever,
                   (-12345678901234.5678)::numeric(18,4) AS big,
                   0.05::numeric(4,2) AS small,
                   date '1970-01-02' AS day`,
      params: [],
      columnar: true,
    });
    const [batch] = await readColumns(cursor);
    expect(batch!.rowCount).toBe(1);
    const [at, before, forever, big, small, day] = batch!.vectors;
    expect(int64s(at!.data)).toEqual([1_704_067_200_123_456n]);
    expect(int64s(before!.data)).toEqual([-1n]);
    expect(int64s(forever!.data)).toEqual([253_402_300_799_999_999n]); // clamped to 9999-12-31 23:59:59.999999
    expect(int64s(big!.data)).toEqual([-123_456_789_012_345_678n]);
    expect(int64s(small!.data)).toEqual([5n]);
    expect(int32s(day!.data)).toEqual([1]);
  });

  it('sets validity bits only for values, and leaves them out when a batch has no NULL', async () => {
    const cursor = await source.query({
      sql: `SELECT CASE WHEN g % 3 = 0 THEN NULL ELSE g END::int AS sparse, g::int AS dense
            FROM generate_series(1, 10) AS g ORDER BY g`,
      params: [],
      columnar: true,
    });
    const [batch] = await readColumns(cursor, 100);
    const [sparse, dense] = batch!.vectors;
    // Rows 3, 6, 9 (indexes 2, 5, 8) are NULL: bits 0b11011011 then 0b10.
    expect([...sparse!.validity!]).toEqual([0b11011011, 0b10]);
    expect(sparse!.valueCount).toBe(7);
    expect(int32s(sparse!.data)).toEqual([1, 2, 4, 5, 7, 8, 10]);
    expect(dense!.validity).toBeUndefined();
    expect(int32s(dense!.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('copies text longer than a socket read as it is (a message split across reads)', async () => {
    const cursor = await source.query({
      sql: `SELECT repeat('é' || g, 40000) AS long, '' AS empty FROM generate_series(1, 3) AS g`,
      params: [],
      columnar: true,
    });
    const [batch] = await readColumns(cursor);
    expect(texts(batch!.vectors[0]!.data)).toEqual([1, 2, 3].map((g) => `é${g}`.repeat(40_000)));
    expect(texts(batch!.vectors[1]!.data)).toEqual(['', '', '']);
  });

  it('binds parameters as the row path does, and says how many a query takes', async () => {
    const cursor = await source.query({
      sql: 'SELECT $1::text AS t, $2::int8 AS n, $3::bool AS b, $4::int AS missing',
      params: ['ünï', 2 ** 40 + 1, true, null],
      columnar: true,
    });
    const rows = [];
    for await (const batch of cursor.batches(10)) rows.push(...batch);
    expect(rows).toEqual([['ünï', 2 ** 40 + 1, true, null]]);

    await failsWith(
      source.query({ sql: 'SELECT $1::int + $2::int AS n', params: [1], columnar: true }),
      'bad-request',
      /takes 2 parameter/,
    );
  });

  it('batches of 1000 over 25,000 rows, and maxRows never exceeded', async () => {
    const sql = 'SELECT g AS n FROM generate_series(1, 25000) AS g';
    const all = await readColumns(await source.query({ sql, params: [], columnar: true }));
    expect(all.map((b) => b.rowCount)).toEqual(Array(25).fill(1000));
    expect(all.flatMap((b) => int32s(b.vectors[0]!.data))).toEqual(
      Array.from({ length: 25_000 }, (_, i) => i + 1),
    );
    const capped = await readColumns(await source.query({ sql, params: [], maxRows: 2500, columnar: true }));
    expect(capped.map((b) => b.rowCount)).toEqual([1000, 1000, 500]);
  });

  it('a value the column cannot hold fails the query, and the connection is fine after it', async () => {
    const cursor = await source.query({
      sql: `SELECT v::numeric(10,2) AS amount FROM (VALUES (1.5), ('NaN'), (2.5)) AS t(v)`,
      params: [],
      columnar: true,
    });
    await failsWith(readColumns(cursor), 'query-failed', /"amount": NaN has no decimal value/);
    const after = await readColumns(await source.query({ sql: 'SELECT 7 AS n', params: [], columnar: true }));
    expect(int32s(after[0]!.vectors[0]!.data)).toEqual([7]);
  });

  it('an error PostgreSQL raises mid-stream fails the query; the connection is fine after it', async () => {
    const cursor = await source.query({
      sql: 'SELECT 10 / (5000 - g) AS n FROM generate_series(1, 10000) AS g',
      params: [],
      columnar: true,
    });
    await failsWith(readColumns(cursor), 'query-failed', /division by zero/);
    const after = await readColumns(await source.query({ sql: 'SELECT 8 AS n', params: [], columnar: true }));
    expect(int32s(after[0]!.vectors[0]!.data)).toEqual([8]);
  });

  it("a backend terminated while the caller holds a batch fails the query with PostgreSQL's own message", async () => {
    const url = new URL(postgresUrl);
    url.searchParams.set('application_name', 'backhaul-terminate-test');
    const own = createPostgresDataSource({ connectionString: url.toString(), poolSize: 1 });
    try {
      const cursor = await own.query({
        sql: 'SELECT g AS n FROM generate_series(1, 100000) AS g',
        params: [],
        columnar: true,
      });
      const iterator = cursor.columnBatches!(1000)[Symbol.asyncIterator]();
      expect((await iterator.next()).value.rowCount).toBe(1000);
      await adminQuery(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'backhaul-terminate-test'",
      );
      const reading = (async () => {
        for (;;) if ((await iterator.next()).done) return;
      })();
      await failsWith(reading, 'query-failed', /terminating connection/);
      // The pool let the dead connection go: the next query gets a new one.
      const after = await readColumns(await own.query({ sql: 'SELECT 5 AS n', params: [], columnar: true }));
      expect(int32s(after[0]!.vectors[0]!.data)).toEqual([5]);
    } finally {
      await own.close();
    }
  });

  it('a query that switches client_encoding away from UTF8 fails instead of writing mislabelled text', async () => {
    const cursor = await source.query({
      sql: "SELECT set_config('client_encoding', 'LATIN1', true) AS e, 'café'::text AS t",
      params: [],
      columnar: true,
    });
    await failsWith(readColumns(cursor), 'query-failed', /client_encoding to LATIN1/);
    const after = await readColumns(
      await source.query({ sql: "SELECT 'é' AS t", params: [], columnar: true }),
    );
    expect(texts(after[0]!.vectors[0]!.data)).toEqual(['é']);
  });

  it('refuses a statement without rows before it runs, as the row path does', async () => {
    await failsWith(
      source.query({ sql: 'SET search_path TO public', params: [], columnar: true }),
      'bad-request',
      /returns no rows/,
    );
    // The transaction was rolled back and the connection returned: the one connection takes the next query.
    const after = await readColumns(await source.query({ sql: 'SELECT 9 AS n', params: [], columnar: true }));
    expect(int32s(after[0]!.vectors[0]!.data)).toEqual([9]);
  });
});

describe('MessageFramer: whole messages, however the socket cuts the bytes', () => {
  /** Three messages: a DataRow-sized one, an empty one, and one of 70,000 bytes. */
  function stream(): { bytes: Buffer; bodies: string[] } {
    const bodies = ['hello', '', 'x'.repeat(70_000)];
    const parts = bodies.map((body, i) => {
      const head = Buffer.alloc(5);
      head[0] = 0x41 + i;
      head.writeInt32BE(4 + body.length, 1);
      return Buffer.concat([head, Buffer.from(body)]);
    });
    return { bytes: Buffer.concat(parts), bodies };
  }

  it('hands out the same messages for reads of every size from 1 byte up', () => {
    const { bytes, bodies } = stream();
    for (const size of [1, 2, 3, 4, 5, 6, 7, 11, 4096, 65_536, bytes.length]) {
      const seen: [number, string][] = [];
      const framer = new MessageFramer((type, buffer, start, end) => {
        seen.push([type, buffer.toString('latin1', start, end)]);
      });
      for (let at = 0; at < bytes.length; at += size) framer.push(bytes.subarray(at, at + size));
      expect(seen, `reads of ${size} bytes`).toEqual(bodies.map((body, i) => [0x41 + i, body]));
      expect(framer.heldBytes).toBe(0);
    }
  });

  it('holds what arrived, not what a header claims, and refuses a length past 1 GiB', () => {
    const before = process.memoryUsage().arrayBuffers;
    const framer = new MessageFramer(() => undefined);
    framer.push(Buffer.from([0x44, 0x3f, 0xff, 0xff, 0xff])); // claims 1 GiB
    expect(framer.heldBytes).toBe(5);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
    expect(() =>
      new MessageFramer(() => undefined).push(Buffer.from([0x44, 0x7f, 0xff, 0xff, 0xff])),
    ).toThrow(/length 2147483647/);
  });

  it('keeps a cut-off message until the rest arrives, and refuses a length below 4', () => {
    const framer = new MessageFramer(() => undefined);
    framer.push(Buffer.from([0x44, 0, 0, 0, 10, 1, 2]));
    expect(framer.heldBytes).toBe(7);
    expect(() => new MessageFramer(() => undefined).push(Buffer.from([0x44, 0, 0, 0, 3]))).toThrow(
      /length 3/,
    );
  });
});

describe('BatchDecoder: a DataRow that does not fit its columns is refused', () => {
  const plan = planColumns([{ name: 'n', dataTypeID: 23, dataTypeModifier: -1 }]); // int4, binary
  /** A DataRow body: one field of these bytes. */
  const row = (...field: number[]) => Buffer.from([0, 1, 0, 0, 0, field.length, ...field]);

  it("a field whose length is not its type's", () => {
    const decoder = new BatchDecoder(plan, 10, []);
    const short = row(7);
    expect(() => decoder.addRow(short, 0, short.length)).toThrow(/1-byte value for column "n"/);
    const good = row(0, 0, 0, 7);
    decoder.addRow(good, 0, good.length);
    expect([...decoder.batch().vectors[0]!.data]).toEqual([7, 0, 0, 0]);
  });

  it('more rows than the fetch asked for', () => {
    const decoder = new BatchDecoder(plan, 1, []);
    const good = row(0, 0, 0, 1);
    decoder.addRow(good, 0, good.length);
    expect(() => decoder.addRow(good, 0, good.length)).toThrow(/more than the 1 rows asked for/);
    expect(decoder.rowCount).toBe(1);
  });
});
