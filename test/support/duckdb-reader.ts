/**
 * DuckDB as the reference reader of the Parquet files Backhaul writes: what it sees is what a data team
 * sees. Shared by the parquet package's tests and the end-to-end tests.
 *
 *   const duck = await openDuckDb();
 *   const file = await duck.file(bytes);            // or a path on disk
 *   await duck.rows(file, { orderBy: 'id' });       // values as JS (BIGINT → bigint, DECIMAL → number)
 *   await duck.rows(file, { select: 'amount::VARCHAR AS amount' }); // exact text of a DECIMAL
 *   await duck.describe(file);                      // [{ name, type: 'DECIMAL(38,2)', nullable }]
 *   await duck.metadata(file);                      // parquet_metadata(): one row per column chunk
 *   await duck.fileMetadata(file);                  // parquet_file_metadata(): created_by, column_orders…
 *   await duck.rowGroupsRead(file, 'id >= 1000');   // which row groups a WHERE cannot skip
 *   duck.close();
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

/** A JS value as `@duckdb/node-api` converts it (`getRowObjectsJS`). */
export type DuckJsValue = ReturnType<
  Awaited<ReturnType<DuckDBConnection['runAndReadAll']>>['getRowObjectsJS']
>[number][string];

export interface DuckColumn {
  name: string;
  /** DuckDB's type name, e.g. `BIGINT`, `VARCHAR`, `DECIMAL(38,2)`, `TIMESTAMP WITH TIME ZONE`, `INTEGER[]`. */
  type: string;
  nullable: boolean;
}

/** One row of `parquet_metadata()`: a column chunk of a row group. Numbers are exact (bigint → number). */
export interface DuckColumnChunk {
  rowGroup: number;
  rowGroupRows: number;
  column: number;
  path: string;
  /** Physical type: `INT64`, `BYTE_ARRAY`, `FIXED_LEN_BYTE_ARRAY`, … */
  type: string;
  numValues: number;
  /** `SNAPPY`, `ZSTD`, `UNCOMPRESSED`, … */
  compression: string;
  /** Comma-separated, e.g. `PLAIN, RLE_DICTIONARY`. */
  encodings: string;
  statsMin: string | null;
  statsMax: string | null;
  statsNullCount: number | null;
  statsMinValue: string | null;
  statsMaxValue: string | null;
  dictionaryPageOffset: number | null;
  dataPageOffset: number;
  totalCompressedSize: number;
  totalUncompressedSize: number;
}

export interface DuckFileMetadata {
  createdBy: string | null;
  numRows: number;
  numRowGroups: number;
  formatVersion: number;
  /** One entry per leaf column, e.g. `ColumnOrder(TYPE_ORDER=TypeDefinedOrder())`; empty when absent. */
  columnOrders: string[];
}

export interface RowsOptions {
  /** The select list (default `*`). */
  select?: string;
  where?: string;
  orderBy?: string;
}

export interface DuckDbReader {
  /** A path DuckDB can read: bytes are written to a temp file (removed by `close()`), a path is kept. */
  file(source: string | Uint8Array | ArrayBuffer | readonly Uint8Array[]): Promise<string>;
  /** A fresh path in the reader's temp dir (removed by `close()`), e.g. for a `COPY … TO`. */
  tempPath(): string;
  /** Runs any SQL and returns its rows as JS values. */
  query(sql: string): Promise<Record<string, DuckJsValue>[]>;
  rows(file: string, options?: RowsOptions): Promise<Record<string, DuckJsValue>[]>;
  describe(file: string): Promise<DuckColumn[]>;
  metadata(file: string): Promise<DuckColumnChunk[]>;
  fileMetadata(file: string): Promise<DuckFileMetadata>;
  /**
   * The row groups DuckDB has to read to answer `SELECT * … WHERE where`, found by breaking each
   * row group's pages in a copy of the file in turn: a query that still succeeds never read that group,
   * i.e. it skipped it on the footer's statistics. (DuckDB's profiler reports estimated, not actual,
   * rows scanned, so this is the observable proof of row-group skipping.)
   */
  rowGroupsRead(file: string, where: string): Promise<number[]>;
  close(): void;
}

export async function openDuckDb(): Promise<DuckDbReader> {
  // Two threads: the suite shares the machine with other tests.
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  let dir: string | undefined;
  let fileCount = 0;

  function tempPath(): string {
    dir ??= mkdtempSync(join(tmpdir(), 'backhaul-duckdb-'));
    return join(dir, `file-${fileCount++}.parquet`);
  }

  async function query(sql: string): Promise<Record<string, DuckJsValue>[]> {
    const reader = await connection.runAndReadAll(sql);
    return reader.getRowObjectsJS();
  }

  async function file(source: string | Uint8Array | ArrayBuffer | readonly Uint8Array[]): Promise<string> {
    if (typeof source === 'string') return source;
    const bytes =
      source instanceof ArrayBuffer
        ? new Uint8Array(source)
        : source instanceof Uint8Array
          ? source
          : Buffer.concat(source as Uint8Array[]);
    const path = tempPath();
    writeFileSync(path, bytes);
    return path;
  }

  async function metadata(path: string): Promise<DuckColumnChunk[]> {
    const rows = await query(
      `SELECT * FROM parquet_metadata(${literal(path)}) ORDER BY row_group_id, column_id`,
    );
    return rows.map((row) => ({
      rowGroup: num(row.row_group_id),
      rowGroupRows: num(row.row_group_num_rows),
      column: num(row.column_id),
      path: String(row.path_in_schema),
      type: String(row.type),
      numValues: num(row.num_values),
      compression: String(row.compression),
      encodings: String(row.encodings),
      statsMin: text(row.stats_min),
      statsMax: text(row.stats_max),
      statsNullCount: row.stats_null_count === null ? null : num(row.stats_null_count),
      statsMinValue: text(row.stats_min_value),
      statsMaxValue: text(row.stats_max_value),
      dictionaryPageOffset: row.dictionary_page_offset === null ? null : num(row.dictionary_page_offset),
      dataPageOffset: num(row.data_page_offset),
      totalCompressedSize: num(row.total_compressed_size),
      totalUncompressedSize: num(row.total_uncompressed_size),
    }));
  }

  return {
    file,
    tempPath,
    query,
    async rows(path, options = {}) {
      const where = options.where ? ` WHERE ${options.where}` : '';
      const order = options.orderBy ? ` ORDER BY ${options.orderBy}` : '';
      return query(`SELECT ${options.select ?? '*'} FROM read_parquet(${literal(path)})${where}${order}`);
    },
    async describe(path) {
      const rows = await query(`DESCRIBE SELECT * FROM read_parquet(${literal(path)})`);
      return rows.map((row) => ({
        name: String(row.column_name),
        type: String(row.column_type),
        nullable: row.null === 'YES',
      }));
    },
    metadata,
    async fileMetadata(path) {
      const [row] = await query(`SELECT * FROM parquet_file_metadata(${literal(path)})`);
      if (!row) throw new Error(`parquet_file_metadata returned nothing for ${path}`);
      return {
        createdBy: text(row.created_by),
        numRows: num(row.num_rows),
        numRowGroups: num(row.num_row_groups),
        formatVersion: num(row.format_version),
        columnOrders: Array.isArray(row.column_orders) ? row.column_orders.map(String) : [],
      };
    },
    async rowGroupsRead(path, where) {
      const original = readFileSync(path);
      const chunks = await metadata(path);
      const groups = [...new Set(chunks.map((chunk) => chunk.rowGroup))];
      const read: number[] = [];
      for (const group of groups) {
        const broken = Buffer.from(original);
        for (const chunk of chunks) {
          if (chunk.rowGroup !== group) continue;
          const start = chunk.dictionaryPageOffset ?? chunk.dataPageOffset;
          broken.fill(0xff, start, start + chunk.totalCompressedSize);
        }
        const copy = tempPath();
        writeFileSync(copy, broken);
        try {
          await query(`SELECT * FROM read_parquet(${literal(copy)}) WHERE ${where}`);
        } catch {
          read.push(group);
        }
      }
      return read;
    },
    close() {
      connection.closeSync();
      instance.closeSync();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function num(value: DuckJsValue | undefined): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`expected an integer from DuckDB, got ${String(value)}`);
  return n;
}

function text(value: DuckJsValue | undefined): string | null {
  return value === null || value === undefined ? null : String(value);
}
