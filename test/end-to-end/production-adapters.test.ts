import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChecksummer, type DataSource } from '@backhaul/core';
import { encodeCursorAsParquet, type ParquetFileCompression } from '@backhaul/gateway-node';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import Database from 'better-sqlite3';
import { parquetMetadata, parquetRead } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { gatewayId } from '../support/harness.js';
import {
  describeWithServices,
  mysqlAdmin,
  mysqlService,
  mysqlUrl,
  type ProductionStack,
  postgresAdmin,
  postgresService,
  postgresUrl,
  redisService,
  startProductionStack,
  uniqueName,
} from '../support/production-services.js';

// The reference deployment end to end: caller → server (Redis command store, S3 storage on
// s3rver) → SSE → gateway → the database's source → Parquet chunks → multipart upload →
// presigned URL → the caller downloads from "S3" directly.

const postgresRows = Number(process.env.BACKHAUL_E2E_POSTGRES_ROWS ?? 3_000_000);
const mysqlRows = Number(process.env.BACKHAUL_E2E_MYSQL_ROWS ?? 200_000);
const sqliteRows = Number(process.env.BACKHAUL_E2E_SQLITE_ROWS ?? 200_000);

interface Expected {
  rows: number;
  /** sum(amount) in cents, computed by the database. */
  amountCents: bigint;
  /** Smallest acceptable file size (100 MB for the large case). */
  minSize: number;
  /** The gateway's page compression, which the local encoding must repeat to be byte-identical. */
  compression?: ParquetFileCompression;
}

/**
 * Submits `sql` in file mode, waits for the URL, downloads through it, and checks the bytes
 * against the result's size and xxhash64, against a second local encoding of the same query
 * (the encoder is deterministic), and the row count and sum(amount) read back from the Parquet
 * file against the database's own aggregate.
 */
async function moveAndVerify(
  label: string,
  stack: ProductionStack,
  sql: string,
  openSource: () => DataSource,
  expected: Expected,
): Promise<void> {
  const started = performance.now();
  const submitted = await stack.harness.client.submit({ gatewayId, sql, mode: 'file' });
  const final = await stack.harness.client.waitFor(submitted.id);
  const urlReadyMs = performance.now() - started;
  expect(final.state).toBe('completed');
  const result = final.result;
  if (result?.kind !== 'file') throw new Error(`expected a file result, got ${JSON.stringify(final)}`);
  expect(result.size).toBeGreaterThanOrEqual(expected.minSize);
  expect(result.rowCount).toBe(expected.rows);
  // A presigned S3 URL: the bytes come from the storage, not through the API server.
  expect(new URL(result.url).searchParams.has('X-Amz-Signature')).toBe(true);

  const downloadStarted = performance.now();
  const response = await fetch(result.url);
  expect(response.status).toBe(200);
  const downloaded = new Uint8Array(await response.arrayBuffer());
  const downloadMs = performance.now() - downloadStarted;
  expect(downloaded.length).toBe(result.size);
  expect((await createChecksummer()).digest(downloaded)).toBe(result.checksum);

  // The encoder is deterministic: encoding the same query again gives the gateway's bytes.
  // Compared piece by piece against the download, without a second copy of the whole file.
  const encodeStarted = performance.now();
  const source = openSource();
  let offset = 0;
  let firstDifference: number | undefined;
  try {
    for await (const piece of encodeCursorAsParquet(await source.query({ sql, params: [], columnar: true }), {
      compression: expected.compression,
    })) {
      const stored = downloaded.subarray(offset, offset + piece.length);
      if (firstDifference === undefined && Buffer.compare(piece, stored) !== 0) firstDifference = offset;
      offset += piece.length;
    }
  } finally {
    await source.close();
  }
  const encodeMs = performance.now() - encodeStarted;
  expect(firstDifference).toBeUndefined();
  expect(offset).toBe(downloaded.length);

  const file = downloaded.buffer.slice(downloaded.byteOffset, downloaded.byteOffset + downloaded.byteLength);
  const metadata = parquetMetadata(file);
  expect(Number(metadata.num_rows)).toBe(expected.rows);
  // amount is decimal(12, 2) stored as INT64; the reader hands out numbers (cents / 100), which
  // round back to exact cents far below 2^53.
  let amountsRead = 0;
  let cents = 0n;
  await parquetRead({
    file,
    metadata,
    compressors,
    columns: ['amount'],
    onChunk: ({ columnData }) => {
      amountsRead += columnData.length;
      let chunkCents = 0;
      // A chunk's sum stays far below 2^53 cents; add it exactly into the bigint total.
      for (const amount of columnData) chunkCents += Math.round(Number(amount) * 100);
      cents += BigInt(chunkCents);
    },
  });
  expect(amountsRead).toBe(expected.rows);
  expect(cents).toBe(expected.amountCents);

  const mb = result.size / 1_000_000;
  console.log(
    `[production adapters] ${label}: ${expected.rows.toLocaleString('en-US')} rows, ${mb.toFixed(1)} MB Parquet; ` +
      `submit → URL ${(urlReadyMs / 1000).toFixed(2)} s = ${Math.round(expected.rows / (urlReadyMs / 1000)).toLocaleString('en-US')} rows/s, ` +
      `${(mb / (urlReadyMs / 1000)).toFixed(1)} MB/s into s3rver; ` +
      `source + Parquet encoder alone ${Math.round(expected.rows / (encodeMs / 1000)).toLocaleString('en-US')} rows/s; ` +
      `download ${(mb / (downloadMs / 1000)).toFixed(1)} MB/s`,
  );
}

describeWithServices(
  [redisService, postgresService],
  'PostgreSQL → Redis store → S3: a multi-million-row result of 100 MB or more arrives as one Parquet file, byte-identical, with the rows and the sum SQL computes',
  () => {
    const table = uniqueName('backhaul_e2e_orders');
    let stack: ProductionStack;
    let expected: Expected;

    beforeAll(async () => {
      // UNLOGGED: no WAL for a table the test drops again; mixed types, a third of `note` NULL.
      await postgresAdmin(`
        CREATE UNLOGGED TABLE ${table} (
          id          bigint PRIMARY KEY,
          customer_id integer NOT NULL,
          amount      numeric(12, 2) NOT NULL,
          discount    double precision,
          email       text NOT NULL,
          is_gift     boolean NOT NULL,
          created_at  timestamptz NOT NULL,
          shipped_on  date,
          note        text
        )`);
      await postgresAdmin(`
        INSERT INTO ${table}
        SELECT n,
               (n * 7919) % 250000,
               ((n * 2654435761) % 5000000) / 100.0,
               CASE WHEN n % 4 = 0 THEN NULL ELSE ((n * 31) % 3000) / 10000.0 END,
               'c' || ((n * 7919) % 250000) || '@shop.io',
               n % 7 = 0,
               timestamptz '2023-01-01 00:00:00+00' + make_interval(secs => (n * 104729) % 63072000),
               CASE WHEN n % 10 < 3 THEN NULL ELSE date '2023-01-01' + (n % 730)::int END,
               CASE WHEN n % 3 = 0 THEN NULL ELSE 'ref ' || to_hex(n * 2654435761) END
        FROM generate_series(1::bigint, ${postgresRows}) AS n`);
      await postgresAdmin(`ANALYZE ${table}`);
      const [totals] = await postgresAdmin<{ n: string; cents: string }>(
        `SELECT count(*)::text AS n, (sum(amount) * 100)::bigint::text AS cents FROM ${table}`,
      );
      // Uncompressed pages keep the file past 100 MB: moving that many bytes is what is tested here.
      expected = {
        rows: Number(totals?.n),
        amountCents: BigInt(totals?.cents ?? -1),
        minSize: 100_000_000,
        compression: 'none',
      };
      expect(expected.rows).toBe(postgresRows);
      stack = await startProductionStack({
        dataSource: () => createPostgresDataSource({ connectionString: postgresUrl }),
        gateway: { parquetCompression: 'none' },
      });
    }, 120_000);

    afterAll(async () => {
      await stack?.close();
      await postgresAdmin(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    });

    it('downloads through the presigned URL byte-identical to the gateway’s encoding; count and sum(amount) equal SQL’s', async () => {
      // ORDER BY: a second sequential scan of a large table may start mid-table
      // (synchronize_seqscans), and the byte comparison needs the same row order twice.
      await moveAndVerify(
        'PostgreSQL',
        stack,
        `SELECT * FROM ${table} ORDER BY id`,
        () => createPostgresDataSource({ connectionString: postgresUrl }),
        expected,
      );
    }, 240_000);
  },
);

describeWithServices(
  [redisService, mysqlService],
  'MariaDB → Redis store → S3: a result arrives as one Parquet file, byte-identical, with the rows and the sum SQL computes',
  () => {
    const table = uniqueName('backhaul_e2e_orders');
    let stack: ProductionStack;
    let expected: Expected;

    beforeAll(async () => {
      await mysqlAdmin(`
        CREATE TABLE ${table} (
          id          BIGINT NOT NULL PRIMARY KEY,
          customer_id INT NOT NULL,
          amount      DECIMAL(12, 2) NOT NULL,
          discount    DOUBLE NULL,
          email       VARCHAR(64) NOT NULL,
          is_gift     BOOLEAN NOT NULL,
          created_at  DATETIME NOT NULL,
          shipped_on  DATE NULL,
          note        TEXT NULL
        ) ENGINE = InnoDB`);
      // MariaDB's SEQUENCE engine: seq_1_to_N is a virtual table of 1..N.
      await mysqlAdmin(`
        INSERT INTO ${table}
        SELECT seq,
               (seq * 7919) % 250000,
               ((seq * 2654435761) % 5000000) / 100,
               IF(seq % 4 = 0, NULL, ((seq * 31) % 3000) / 10000),
               CONCAT('c', (seq * 7919) % 250000, '@shop.io'),
               seq % 7 = 0,
               TIMESTAMP '2023-01-01 00:00:00' + INTERVAL ((seq * 104729) % 63072000) SECOND,
               IF(seq % 10 < 3, NULL, DATE '2023-01-01' + INTERVAL (seq % 730) DAY),
               IF(seq % 3 = 0, NULL, CONCAT('ref ', LOWER(HEX(seq * 2654435761))))
        FROM seq_1_to_${mysqlRows}`);
      const [totals] = await mysqlAdmin<{ n: string; cents: string }[]>(
        `SELECT CAST(COUNT(*) AS CHAR) AS n, CAST(SUM(amount) * 100 AS CHAR) AS cents FROM ${table}`,
      );
      // SUM(DECIMAL(12,2)) * 100 keeps the scale: '123.00' → the integer part.
      expected = {
        rows: Number(totals?.n),
        amountCents: BigInt(String(totals?.cents).split('.')[0] ?? '-1'),
        minSize: 1,
      };
      expect(expected.rows).toBe(mysqlRows);
      stack = await startProductionStack({ dataSource: () => createMysqlDataSource({ uri: mysqlUrl }) });
    }, 120_000);

    afterAll(async () => {
      await stack?.close();
      await mysqlAdmin(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    });

    it('downloads through the presigned URL byte-identical to the gateway’s encoding; count and sum(amount) equal SQL’s', async () => {
      await moveAndVerify(
        'MariaDB',
        stack,
        `SELECT * FROM ${table} ORDER BY id`,
        () => createMysqlDataSource({ uri: mysqlUrl }),
        expected,
      );
    }, 120_000);
  },
);

describeWithServices(
  [redisService],
  'SQLite → Redis store → S3: a result arrives as one Parquet file, byte-identical, with the rows and the sum SQL computes',
  () => {
    let dir: string;
    let dbPath: string;
    let stack: ProductionStack;
    let expected: Expected;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'backhaul-e2e-sqlite-'));
      dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), sqliteRows).path;
      const db = new Database(dbPath, { readonly: true });
      // amount is DECIMAL(12,2) holding REALs rounded to cents: sum them as integer cents.
      const totals = db
        .prepare('SELECT count(*) AS n, sum(CAST(round(amount * 100) AS INTEGER)) AS cents FROM orders')
        .safeIntegers(true)
        .get() as { n: bigint; cents: bigint };
      db.close();
      expected = { rows: Number(totals.n), amountCents: totals.cents, minSize: 1 };
      expect(expected.rows).toBe(sqliteRows);
      stack = await startProductionStack({ dataSource: () => createSqliteDataSource({ filename: dbPath }) });
    }, 120_000);

    afterAll(async () => {
      await stack?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('downloads through the presigned URL byte-identical to the gateway’s encoding; count and sum(amount) equal SQL’s', async () => {
      await moveAndVerify(
        'SQLite',
        stack,
        'SELECT * FROM orders',
        () => createSqliteDataSource({ filename: dbPath }),
        expected,
      );
    }, 120_000);
  },
);
