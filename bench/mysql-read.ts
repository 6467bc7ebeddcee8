// bench:mysql-read: how fast file mode reads a MySQL/MariaDB result, through the source's columnar
// reader (row packets decoded straight into column batches) and through the row path (a JS value per
// cell, then turned into column batches, as file mode did before). No network and no upload: the read
// pass alone, then the read and Parquet encode together (`encodeCursorAsParquet`, bytes dropped), each
// path `--runs` times, alternating, the fastest run counting. Before any figure the two paths' column
// batches are compared byte for byte.
import { type ColumnBatch, type DataSource, rowsToColumnBatch } from '@backhaul/core';
import { encodeCursorAsParquet } from '@backhaul/gateway-node';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import mysql from 'mysql2';
import { parseOptions } from './lib/options.js';
import { machine } from './lib/proc.js';
import { progress, round, runMain } from './lib/report.js';
import { now } from './lib/timing.js';

const spec = {
  url: {
    default: 'mysql://root@127.0.0.1:3306/test',
    help: 'MariaDB to read from (the table is made with seq_1_to_N)',
  },
  table: {
    default: 'bench_mysql_orders',
    help: 'table name (created, or re-created when its row count differs)',
  },
  rows: { default: 1_000_000, help: 'rows in the table' },
  runs: { default: 3, help: 'runs per path; the fastest counts' },
  'batch-rows': { default: 8192, help: 'rows per batch (file mode reads 8192)' },
};
const options = parseOptions('mysql-read', spec);

/** The shape of the PostgreSQL bench's orders: ids, text of low and high cardinality, decimals, NULLs. */
const CREATE = `CREATE TABLE ${options.table} (
  id BIGINT PRIMARY KEY, customer VARCHAR(32), status VARCHAR(16), country CHAR(2),
  amount DECIMAL(12, 2), quantity INT, discount DOUBLE NULL, placed_at DATETIME(6),
  ship_date DATE NULL, gift BOOLEAN NULL, note VARCHAR(64) NULL)`;
const FILL = `INSERT INTO ${options.table} SELECT seq,
  CONCAT('customer-', seq * 7919 % 20000), ELT(1 + seq % 6, 'new', 'paid', 'packed', 'shipped', 'delivered', 'returned'),
  ELT(1 + seq % 12, 'DE', 'FR', 'US', 'GB', 'NL', 'ES', 'IT', 'PL', 'SE', 'JP', 'BR', 'IN'),
  (seq * 104729 % 5000000) / 100, 1 + seq % 9, IF(seq % 10 < 3, NULL, (seq % 31) / 100),
  TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq * 15000013 MICROSECOND,
  IF(seq % 10 = 0, NULL, DATE '2024-01-01' + INTERVAL seq DIV 2000 DAY), IF(seq % 33 = 0, NULL, seq % 5 < 4),
  IF(seq % 10 < 6, NULL, CONCAT('gift wrap ', CONV(seq * 2654435761 % 1000000, 10, 36)))
  FROM seq_1_to_${options.rows}`;

function admin(sql: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const connection = mysql.createConnection({ uri: options.url });
    connection.query(sql, (error, result) => {
      connection.destroy();
      if (error) reject(error);
      else resolve(result);
    });
  });
}

async function ensureTable(): Promise<void> {
  const count = await admin(`SELECT COUNT(*) AS n FROM ${options.table}`).then(
    (rows) => Number((rows as { n: number }[])[0]!.n),
    () => -1,
  );
  if (count === options.rows) return;
  progress(`creating ${options.table} with ${options.rows} rows`);
  await admin(`DROP TABLE IF EXISTS ${options.table}`);
  await admin(CREATE);
  await admin(FILL);
}

const SQL = `SELECT * FROM ${options.table} ORDER BY id`;

/** The column batches of one read, through either path; `keep` holds them for the comparison. */
async function read(source: DataSource, columnar: boolean, keep?: ColumnBatch[]): Promise<number> {
  const cursor = await source.query({ sql: SQL, params: [], columnar });
  let rows = 0;
  if (columnar) {
    for await (const batch of cursor.columnBatches!(options['batch-rows'])) {
      rows += batch.rowCount;
      keep?.push(batch);
    }
  } else {
    for await (const batch of cursor.batches(options['batch-rows'])) {
      const columns = rowsToColumnBatch(cursor.columns, batch);
      rows += columns.rowCount;
      keep?.push(columns);
    }
  }
  return rows;
}

async function encode(source: DataSource, columnar: boolean): Promise<number> {
  const cursor = await source.query({ sql: SQL, params: [], columnar });
  let bytes = 0;
  for await (const part of encodeCursorAsParquet(cursor, { batchSize: options['batch-rows'] }))
    bytes += part.byteLength;
  return bytes;
}

function sameBatches(a: ColumnBatch[], b: ColumnBatch[]): boolean {
  if (a.length !== b.length) return false;
  return a.every(
    (batch, i) =>
      batch.rowCount === b[i]!.rowCount &&
      batch.vectors.every((v, c) => {
        const w = b[i]!.vectors[c]!;
        return (
          v.valueCount === w.valueCount &&
          Buffer.from(v.data).equals(Buffer.from(w.data)) &&
          (v.validity === undefined) === (w.validity === undefined) &&
          (v.validity === undefined || Buffer.from(v.validity).equals(Buffer.from(w.validity!)))
        );
      }),
  );
}

runMain('mysql-read', async () => {
  await ensureTable();
  const source = createMysqlDataSource({ uri: options.url, poolSize: 1 });
  try {
    // A first read of each path warms the JIT and the server's buffer pool, and checks the bytes.
    const byRows: ColumnBatch[] = [];
    const byColumns: ColumnBatch[] = [];
    await read(source, false, byRows);
    await read(source, true, byColumns);
    if (!sameBatches(byRows, byColumns)) throw new Error('the columnar and row paths gave different batches');
    byRows.length = 0;
    byColumns.length = 0;
    progress('both paths give the same column batches');

    const best = {
      rows_read_s: Infinity,
      columnar_read_s: Infinity,
      rows_encode_s: Infinity,
      columnar_encode_s: Infinity,
    };
    let parquetBytes = 0;
    for (let run = 0; run < options.runs; run++) {
      for (const columnar of [false, true]) {
        let started = now();
        const rows = await read(source, columnar);
        if (rows !== options.rows) throw new Error(`read ${rows} rows, expected ${options.rows}`);
        const readS = (now() - started) / 1000;
        started = now();
        parquetBytes = await encode(source, columnar);
        const encodeS = (now() - started) / 1000;
        const path = columnar ? 'columnar' : 'rows';
        best[`${path}_read_s`] = Math.min(best[`${path}_read_s`], readS);
        best[`${path}_encode_s`] = Math.min(best[`${path}_encode_s`], encodeS);
        progress(`run ${run + 1} ${path}`, { read_s: round(readS), encode_s: round(encodeS) });
      }
    }
    const perSecond = (seconds: number) => Math.round(options.rows / seconds);
    return {
      bench: 'mysql-read',
      rows: options.rows,
      batch_rows: options['batch-rows'],
      rows_read_s: round(best.rows_read_s),
      columnar_read_s: round(best.columnar_read_s),
      rows_read_rows_s: perSecond(best.rows_read_s),
      columnar_read_rows_s: perSecond(best.columnar_read_s),
      read_speedup: round(best.rows_read_s / best.columnar_read_s, 2),
      rows_encode_s: round(best.rows_encode_s),
      columnar_encode_s: round(best.columnar_encode_s),
      encode_speedup: round(best.rows_encode_s / best.columnar_encode_s, 2),
      parquet_bytes: parquetBytes,
      runs: options.runs,
      ...machine(),
    };
  } finally {
    await source.close();
  }
});
