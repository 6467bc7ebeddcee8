// The tables bench:parquet writes: generated from a fixed seed, so every run and every writer sees the
// same rows.
import { type Column, type ColumnBatch, type RowValue, rowsToColumnBatch } from '@backhaul/core';
import type { ParquetColumn } from '@backhaul/parquet';
import { random } from './dataset.js';

export interface Table {
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
export function ordersTable(count: number): Table {
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
export function eventsTable(count: number): Table {
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

/** The table as the column batches a gateway's columnar reader hands the writer, `size` rows each. */
export function columnBatches(table: Table, size: number): ColumnBatch[] {
  const columns = table.columns.map((column): Column => ({ ...column, nullable: column.nullable ?? true }));
  const batches: ColumnBatch[] = [];
  for (let i = 0; i < table.rows.length; i += size) {
    batches.push(rowsToColumnBatch(columns, table.rows.slice(i, i + size) as RowValue[][]));
  }
  return batches;
}
