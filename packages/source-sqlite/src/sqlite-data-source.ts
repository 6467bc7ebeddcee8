import {
  BackhaulError,
  type ColumnBatch,
  ColumnBatchBuilder,
  checkBatchSize,
  type DataSource,
  type QueryCursor,
  type RowValue,
  uniqueColumnNames,
} from '@backhaul/core';
import Database from 'better-sqlite3';
import { ColumnTyper, converterFor } from './sqlite-types.js';

export interface SqliteDataSourceOptions {
  filename: string;
  /** Opens the database read-only (default true); write statements are refused either way. */
  readonly?: boolean;
}

/** Rows read before the columns are decided: their values widen the declared types (sqlite-types.ts). */
const INFERENCE_ROWS = 1000;

/**
 * A `DataSource` over SQLite with better-sqlite3. Rows are read lazily with `stmt.iterate()` in
 * raw (array) mode and converted only where the declared type asks for it.
 *
 * Limits, because better-sqlite3 is synchronous: `timeoutMs` and `signal` are checked between
 * batches (and every few thousand rows), so one slow step of SQLite itself (a big sort before the
 * first row) cannot be interrupted. Each query gets its own connection from a small pool, since a
 * connection with an open iterator cannot run anything else.
 */
export function createSqliteDataSource(options: SqliteDataSourceOptions): DataSource {
  const readonly = options.readonly ?? true;
  const inMemory = options.filename === ':memory:' || options.filename === '';
  const idle: Database.Database[] = [];
  const open = new Set<Database.Database>();
  let closed = false;

  const acquire = (): Database.Database => {
    if (closed) throw new BackhaulError('query-failed', 'The SQLite data source is closed');
    const reused = idle.pop();
    if (reused) return reused;
    // An in-memory database exists only in its one connection: share it (one query at a time).
    if (inMemory && open.size > 0) return [...open][0]!;
    const db = new Database(options.filename, inMemory ? {} : { readonly, fileMustExist: readonly });
    open.add(db);
    return db;
  };
  const release = (db: Database.Database) => {
    if (closed) db.close();
    else if (!idle.includes(db)) idle.push(db);
  };

  return {
    specificationVersion: 'v1',
    name: 'sqlite',
    async query(request) {
      request.signal?.throwIfAborted();
      const db = acquire();
      let statement: Database.Statement;
      try {
        statement = db.prepare(request.sql);
      } catch (error) {
        release(db);
        throw new BackhaulError('query-failed', (error as Error).message, { cause: error });
      }
      // Only reads: the gateway must never change the database it was given.
      if (!statement.readonly || !statement.reader) {
        release(db);
        throw new BackhaulError(
          'query-failed',
          statement.reader
            ? 'Only read-only statements are allowed; this statement would modify the database'
            : 'The statement returns no rows; only read-only queries (SELECT, WITH …) are allowed',
        );
      }
      try {
        statement.raw(true);
        // int64 beyond 2^53 must stay exact: read integers as bigint, narrow the safe ones to number.
        statement.safeIntegers(true);
        const rows = statement.iterate(...request.params.map(toSqliteParameter)) as IterableIterator<
          unknown[]
        >;
        return await openCursor(statement, rows, request, () => release(db));
      } catch (error) {
        release(db);
        throw BackhaulError.isInstance(error)
          ? error
          : new BackhaulError('query-failed', (error as Error).message, { cause: error });
      }
    },
    async close() {
      closed = true;
      for (const db of open) if (db.open) db.close();
      open.clear();
      idle.length = 0;
    },
  };
}

function toSqliteParameter(value: string | number | boolean | null): string | number | null {
  // SQLite has no boolean; 1/0 is what its own comparisons use.
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

async function openCursor(
  statement: Database.Statement,
  rows: IterableIterator<unknown[]>,
  request: Parameters<DataSource['query']>[0],
  onClose: () => void,
): Promise<QueryCursor> {
  const started = Date.now();
  const maxRows = request.maxRows ?? Number.POSITIVE_INFINITY;
  const declared = statement.columns().map((c) => ({ name: c.name, declaredType: c.type }));
  let read = 0;
  let done = false;
  let closed = false;

  const checkLimits = () => {
    request.signal?.throwIfAborted();
    if (request.timeoutMs !== undefined && Date.now() - started > request.timeoutMs) {
      throw new BackhaulError('timeout', `The query ran longer than ${request.timeoutMs} ms`);
    }
  };
  const nextRaw = (): unknown[] | undefined => {
    if (done || read >= maxRows) {
      done = true;
      return undefined;
    }
    const next = rows.next();
    if (next.done) {
      done = true;
      return undefined;
    }
    read++;
    return next.value;
  };

  // SQLite types values, not columns: the first rows are read now, their values decide each
  // column's type with its declared type (ColumnTyper), and they are handed out first.
  const prefetched: unknown[][] = [];
  const typers = declared.map((c) => new ColumnTyper(c.name, c.declaredType));
  while (prefetched.length < INFERENCE_ROWS) {
    const row = nextRaw();
    if (!row) break;
    prefetched.push(row);
    for (let i = 0; i < typers.length; i++) typers[i]!.observe(row[i]);
  }
  const columns = uniqueColumnNames(typers.map((typer) => typer.column()));
  const converters = columns.map(converterFor);
  const convert = (row: unknown[]): RowValue[] => {
    for (let i = 0; i < converters.length; i++) {
      const value = row[i];
      if (value !== null) row[i] = converters[i]!(value);
    }
    return row as RowValue[];
  };

  const close = () => {
    if (closed) return;
    closed = true;
    done = true;
    // Returning the iterator resets the statement, which frees the connection for the next query.
    rows.return?.();
    onClose();
  };

  /**
   * Reads up to `batchSize` rows into `take`, checking the limits every few thousand rows (a timeout
   * inside one huge batch still fires reasonably close to its time). Returns the rows taken.
   */
  let handedOut = 0;
  const fill = (batchSize: number, take: (row: unknown[]) => void): number => {
    let taken = 0;
    while (taken < batchSize) {
      const row = handedOut < prefetched.length ? prefetched[handedOut++] : nextRaw();
      if (!row) break;
      take(row);
      taken++;
      if ((taken & 4095) === 0) checkLimits();
    }
    return taken;
  };

  async function* readBatches<T>(
    batchSize: number,
    start: () => { add: (row: unknown[]) => void; end: () => T },
  ) {
    checkBatchSize(batchSize);
    try {
      while (true) {
        checkLimits();
        const batch = start();
        if (fill(batchSize, batch.add) === 0) break;
        yield batch.end();
        // better-sqlite3 blocks the thread: give uploads and heartbeats a turn between batches.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      // A cancellation keeps its own reason; anything SQLite raised is the query's failure.
      throw BackhaulError.isInstance(error) || request.signal?.aborted
        ? error
        : new BackhaulError('query-failed', (error as Error).message, { cause: error });
    } finally {
      close();
    }
  }

  const cursor: QueryCursor = {
    columns,
    batches(batchSize: number) {
      return readBatches(batchSize, () => {
        const rows: RowValue[][] = [];
        return { add: (row) => rows.push(convert(row)), end: () => rows };
      });
    },
    async close() {
      close();
    },
  };
  if (!request.columnar) return cursor;
  return {
    ...cursor,
    // better-sqlite3 hands out a JS value per cell (raw mode: one array per row): each value goes
    // straight into its column's vector, with no converted row in between.
    columnBatches(batchSize: number) {
      return readBatches<ColumnBatch>(batchSize, () => {
        const builder = new ColumnBatchBuilder(columns, batchSize);
        const vectors = builder.columns;
        return {
          add: (row) => {
            for (let i = 0; i < vectors.length; i++) {
              const value = row[i];
              if (value === null) vectors[i]!.appendNull();
              else vectors[i]!.append(converters[i]!(value));
            }
          },
          end: () => builder.batch(),
        };
      });
    },
    async close() {
      close();
    },
  };
}
