// bench:parquet: the same tables written by @backhaul/parquet and by DuckDB's `COPY … TO` (snappy and
// zstd) in one run, on the same machine. Backhaul is fed column batches, as a gateway's columnar
// readers feed it (built before the clock starts, as DuckDB's table is); DuckDB copies from its own
// in-memory table, limited to `--duckdb-threads` (2). Backhaul's row path (JS values per cell, what
// `ParquetWriter.write` takes) is measured too, as `backhaul_rows_s`. Each writer runs `--warmup` times
// untimed, then `--runs` times, and the fastest run counts; every file is read back by DuckDB and
// compared (count and a checksum over every column) before a figure is reported.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ColumnBatch } from '@backhaul/core';
import { type ParquetCompression, ParquetWriter } from '@backhaul/parquet';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseOptions } from './lib/options.js';
import { columnBatches, eventsTable, ordersTable, type Table } from './lib/parquet-tables.js';
import { machine } from './lib/proc.js';
import { progress, round, runMain } from './lib/report.js';
import { now } from './lib/timing.js';

const spec = {
  rows: { default: 200_000, help: 'rows per table' },
  runs: { default: 5, help: 'timed runs per writer; the fastest counts' },
  warmup: { default: 2, help: 'untimed runs per writer first (JIT, allocator, file cache)' },
  'duckdb-threads': { default: 2, help: "DuckDB's threads" },
  'zstd-level': { default: 3, help: "Backhaul's zstd level" },
  'batch-rows': { default: 8192, help: 'rows per batch handed to the writer (the gateway reads 8192)' },
};
const options = parseOptions('parquet', spec);

async function writeBackhaulColumns(
  table: Table,
  batches: readonly ColumnBatch[],
  compression: ParquetCompression,
): Promise<Uint8Array[]> {
  const writer = new ParquetWriter(table.columns, { compression });
  const parts: Uint8Array[] = [];
  for (const batch of batches) parts.push(...(await writer.writeColumnsAsync(batch)));
  parts.push(...(await writer.finishAsync()));
  return parts;
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
  for (let i = 0; i < options.warmup; i++) await run();
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
    for (const makeTable of [ordersTable, eventsTable]) {
      const table = makeTable(options.rows);
      const rowCount = table.rows.length;
      progress(`table ${table.name}: ${table.rows.length} rows, ${table.columns.length} columns`);
      // DuckDB's table, loaded from an uncompressed file of ours (not timed).
      const seed = join(dir, `${table.name}-seed.parquet`);
      writeFileSync(seed, Buffer.concat(await writeBackhaul(table, 'none')));
      const columns = table.columns.map((column, i) => `"${column.name}" ${table.duckTypes[i]}`).join(', ');
      await db.run(`CREATE TABLE ${table.name} (${columns})`);
      await db.run(`INSERT INTO ${table.name} SELECT * FROM read_parquet('${seed}')`);

      const zstdLevel = options['zstd-level'];
      const batches = columnBatches(table, options['batch-rows']);
      const backhaulRows = await fastest(options.runs, async () => {
        const parts = await writeBackhaul(table, { codec: 'zstd', level: zstdLevel });
        writeFileSync(join(dir, `${table.name}-backhaul-rows.parquet`), Buffer.concat(parts));
        return parts.reduce((sum, part) => sum + part.length, 0);
      });
      // The column path runs without the JS rows on the heap, as in a gateway: 200,000 rows of JS values
      // would make every full collection during the runs mark them.
      table.rows = [];
      const backhaul = await fastest(options.runs, async () => {
        const parts = await writeBackhaulColumns(table, batches, { codec: 'zstd', level: zstdLevel });
        writeFileSync(join(dir, `${table.name}-backhaul.parquet`), Buffer.concat(parts));
        return parts.reduce((sum, part) => sum + part.length, 0);
      });
      const backhaulSnappy = await fastest(options.runs, async () => {
        const parts = await writeBackhaulColumns(table, batches, 'snappy');
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
      const fromRows = await fingerprint(join(dir, `${table.name}-backhaul-rows.parquet`));
      if (fromRows !== ours) throw new Error(`${table.name}: the row path and the column path differ`);

      results[table.name] = {
        rows: rowCount,
        backhaul_zstd_bytes: backhaul.bytes,
        backhaul_zstd_s: round(backhaul.seconds),
        backhaul_rows_zstd_s: round(backhaulRows.seconds),
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
    backhaul_rows_s: orders.backhaul_rows_zstd_s,
    bench: 'parquet',
    duckdb_threads: options['duckdb-threads'],
    zstd_level: options['zstd-level'],
    tables: results,
    ...machine(),
  };
});
