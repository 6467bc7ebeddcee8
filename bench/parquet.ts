// bench:parquet: the same tables written by @backhaul/parquet and by DuckDB's `COPY … TO` (snappy and
// zstd) in one run, on the same machine. Backhaul is fed JS row batches, as a gateway's row path feeds
// it; DuckDB copies from its own in-memory table (its best case: columnar, already typed), limited to
// `--duckdb-threads` (2). Each writer runs `--runs` times and the fastest run counts; every file is read
// back by DuckDB and compared (count and a checksum over every column) before a figure is reported.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ParquetColumn, type ParquetCompression, ParquetWriter } from '@backhaul/parquet';
import { DuckDBInstance } from '@duckdb/node-api';
import { random } from './lib/dataset.js';
import { parseOptions } from './lib/options.js';
import { machine } from './lib/proc.js';
import { progress, round, runMain } from './lib/report.js';
import { now } from './lib/timing.js';

const spec = {
  rows: { default: 200_000, help: 'rows per table' },
  runs: { default: 3, help: 'runs per writer; the fastest counts' },
  'duckdb-threads': { default: 2, help: "DuckDB's threads" },
  'zstd-level': { default: 3, help: "Backhaul's zstd level" },
  'batch-rows': { default: 8192, help: 'rows per batch handed to the writer (the gateway reads 8192)' },
};
const options = parseOptions('parquet', spec);

interface Table {
  name: string;
  columns: ParquetColumn[];
  /** DuckDB's column types, in order, for the table it copies from. */
  duckTypes: string[];
  rows: unknown[][];
}

const EPOCH_2024 = Date.UTC(2024, 0, 1);
const STATUSES = ['new', 'paid', 'packed', 'shipped', 'delivered', 'returned'];
const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'ES', 'IT', 'PL', 'SE', 'JP', 'BR', 'IN'];

/** Orders: a sorted id, customers and amounts of a shop, a few low-cardinality text columns, NULLs. */
function ordersTable(count: number): Table {
  const next = random(0x5eed_0001);
  const rows: unknown[][] = [];
  for (let i = 0; i < count; i++) {
    const r = next();
    rows.push([
      BigInt(i + 1),
      `customer-${Math.floor(next() * 20_000)}`,
      STATUSES[Math.floor(next() * STATUSES.length)],
      COUNTRIES[Math.floor(next() * COUNTRIES.length)],
      (Math.round(next() * 5_000_000) / 100).toFixed(2),
      1 + Math.floor(next() * 9),
      r < 0.3 ? null : Math.round(next() * 30) / 100,
      new Date(EPOCH_2024 + i * 15_000 + Math.floor(next() * 15_000)),
      r < 0.1 ? null : 19_723 + Math.floor(i / 2_000) + Math.floor(next() * 5),
      r > 0.97 ? null : next() < 0.8,
      r < 0.6 ? null : `gift wrap ${Math.floor(next() * 1_000_000).toString(36)}`,
    ]);
  }
  return {
    name: 'orders',
    columns: [
      { name: 'id', type: 'int64', nullable: false },
      { name: 'customer', type: 'string', nullable: false },
      { name: 'status', type: 'string', nullable: false },
      { name: 'country', type: 'string', nullable: false },
      { name: 'amount', type: 'decimal', precision: 12, scale: 2, nullable: false },
      { name: 'qty', type: 'int32', nullable: false },
      { name: 'discount', type: 'float64' },
      { name: 'placed_at', type: 'timestamp', nullable: false },
      { name: 'shipped_on', type: 'date' },
      { name: 'paid', type: 'boolean' },
      { name: 'note', type: 'string' },
    ],
    duckTypes: [
      'BIGINT NOT NULL',
      'VARCHAR NOT NULL',
      'VARCHAR NOT NULL',
      'VARCHAR NOT NULL',
      'DECIMAL(12,2) NOT NULL',
      'INTEGER NOT NULL',
      'DOUBLE',
      'TIMESTAMPTZ NOT NULL',
      'DATE',
      'BOOLEAN',
      'VARCHAR',
    ],
    rows,
  };
}

const LEVELS = ['DEBUG', 'INFO', 'INFO', 'INFO', 'WARN', 'ERROR'];
const SERVICES = ['api', 'billing', 'search', 'auth', 'worker', 'mailer', 'gateway', 'scheduler'];
const PATHS = ['/v1/orders', '/v1/customers', '/v1/search', '/login', '/v1/invoices', '/health'];

/** Events: a log table of free text and JSON, with random (unsorted) user ids and latencies. */
function eventsTable(count: number): Table {
  const next = random(0x5eed_0002);
  const rows: unknown[][] = [];
  for (let i = 0; i < count; i++) {
    const service = SERVICES[Math.floor(next() * SERVICES.length)]!;
    const path = PATHS[Math.floor(next() * PATHS.length)]!;
    const status = next() < 0.93 ? 200 : next() < 0.5 ? 404 : 500;
    const latency = Math.round(next() * next() * 2_000_000) / 1000;
    rows.push([
      new Date(EPOCH_2024 + i * 250 + Math.floor(next() * 250)),
      LEVELS[Math.floor(next() * LEVELS.length)],
      service,
      BigInt(Math.floor(next() * 2 ** 40)),
      `${service} handled GET ${path} in ${latency} ms with status ${status}`,
      latency,
      JSON.stringify({
        path,
        status,
        region: COUNTRIES[Math.floor(next() * COUNTRIES.length)],
        retry: next() < 0.05,
      }),
    ]);
  }
  return {
    name: 'events',
    columns: [
      { name: 'ts', type: 'timestamp', nullable: false },
      { name: 'level', type: 'string', nullable: false },
      { name: 'service', type: 'string', nullable: false },
      { name: 'user_id', type: 'int64', nullable: false },
      { name: 'message', type: 'string', nullable: false },
      { name: 'latency_ms', type: 'float64', nullable: false },
      { name: 'attributes', type: 'json', nullable: false },
    ],
    duckTypes: [
      'TIMESTAMPTZ NOT NULL',
      'VARCHAR NOT NULL',
      'VARCHAR NOT NULL',
      'BIGINT NOT NULL',
      'VARCHAR NOT NULL',
      'DOUBLE NOT NULL',
      'JSON NOT NULL',
    ],
    rows,
  };
}

async function writeBackhaul(table: Table, compression: ParquetCompression): Promise<Uint8Array[]> {
  const writer = new ParquetWriter(table.columns, { compression });
  const parts: Uint8Array[] = [];
  const batch = options['batch-rows'];
  for (let i = 0; i < table.rows.length; i += batch) {
    parts.push(...(await writer.writeAsync(table.rows.slice(i, i + batch))));
  }
  parts.push(...(await writer.finishAsync()));
  return parts;
}

interface Measured {
  bytes: number;
  seconds: number;
}

async function fastest(runs: number, run: () => Promise<number>): Promise<Measured> {
  let best: Measured | undefined;
  for (let i = 0; i < runs; i++) {
    const started = now();
    const bytes = await run();
    const seconds = (now() - started) / 1000;
    if (!best || seconds < best.seconds) best = { bytes, seconds };
  }
  return best!;
}

runMain('parquet', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'backhaul-bench-parquet-'));
  const duck = await DuckDBInstance.create(':memory:', { threads: String(options['duckdb-threads']) });
  const db = await duck.connect();
  const results: Record<string, Record<string, number>> = {};
  try {
    for (const table of [ordersTable(options.rows), eventsTable(options.rows)]) {
      progress(`table ${table.name}: ${table.rows.length} rows, ${table.columns.length} columns`);
      // DuckDB's table, loaded from an uncompressed file of ours (not timed).
      const seed = join(dir, `${table.name}-seed.parquet`);
      writeFileSync(seed, Buffer.concat(await writeBackhaul(table, 'none')));
      const columns = table.columns.map((column, i) => `"${column.name}" ${table.duckTypes[i]}`).join(', ');
      await db.run(`CREATE TABLE ${table.name} (${columns})`);
      await db.run(`INSERT INTO ${table.name} SELECT * FROM read_parquet('${seed}')`);

      const zstdLevel = options['zstd-level'];
      const backhaul = await fastest(options.runs, async () => {
        const parts = await writeBackhaul(table, { codec: 'zstd', level: zstdLevel });
        writeFileSync(join(dir, `${table.name}-backhaul.parquet`), Buffer.concat(parts));
        return parts.reduce((sum, part) => sum + part.length, 0);
      });
      const backhaulSnappy = await fastest(options.runs, async () => {
        const parts = await writeBackhaul(table, 'snappy');
        return parts.reduce((sum, part) => sum + part.length, 0);
      });
      const duckdb = async (codec: string) =>
        fastest(options.runs, async () => {
          const path = join(dir, `${table.name}-duckdb-${codec}.parquet`);
          await db.run(`COPY ${table.name} TO '${path}' (FORMAT parquet, COMPRESSION ${codec})`);
          return statSync(path).size;
        });
      const duckZstd = await duckdb('zstd');
      const duckSnappy = await duckdb('snappy');

      // Read back: the same rows, whoever wrote them.
      const fingerprint = async (path: string) => {
        const reader = await db.runAndReadAll(
          `SELECT count(*)::VARCHAR AS n, sum(hash(COLUMNS(*)))::VARCHAR FROM read_parquet('${path}')`,
        );
        return JSON.stringify(reader.getRowsJS()[0]);
      };
      const ours = await fingerprint(join(dir, `${table.name}-backhaul.parquet`));
      const theirs = await fingerprint(join(dir, `${table.name}-duckdb-zstd.parquet`));
      if (ours !== theirs) throw new Error(`${table.name}: DuckDB reads different rows from our file`);

      results[table.name] = {
        rows: table.rows.length,
        backhaul_zstd_bytes: backhaul.bytes,
        backhaul_zstd_s: round(backhaul.seconds),
        backhaul_snappy_bytes: backhaulSnappy.bytes,
        backhaul_snappy_s: round(backhaulSnappy.seconds),
        duckdb_zstd_bytes: duckZstd.bytes,
        duckdb_zstd_s: round(duckZstd.seconds),
        duckdb_snappy_bytes: duckSnappy.bytes,
        duckdb_snappy_s: round(duckSnappy.seconds),
      };
      progress(`table ${table.name}`, results[table.name]);
    }
  } finally {
    db.closeSync();
    duck.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
  const orders = results.orders!;
  return {
    rows: orders.rows,
    backhaul_bytes: orders.backhaul_zstd_bytes,
    duckdb_zstd_bytes: orders.duckdb_zstd_bytes,
    backhaul_s: orders.backhaul_zstd_s,
    duckdb_s: orders.duckdb_zstd_s,
    ratio_bytes: round(orders.backhaul_zstd_bytes! / orders.duckdb_zstd_bytes!),
    ratio_time: round(orders.backhaul_zstd_s! / orders.duckdb_zstd_s!),
    bench: 'parquet',
    duckdb_threads: options['duckdb-threads'],
    zstd_level: options['zstd-level'],
    tables: results,
    ...machine(),
  };
});
