import { BackhaulError, type Column, type DataSource, type QueryCursor, type RowValue } from '@backhaul/core';
import Database from 'better-sqlite3';

export interface SqliteDataSourceOptions {
  filename: string;
  /** Opens the database read-only (default true); write statements are refused either way. */
  readonly?: boolean;
}

type Converter = (value: unknown) => RowValue;

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** Rows read before the columns of expressions (no declared type) are inferred from their values. */
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

  // Columns without a declared type (expressions) are typed from their first non-null value,
  // which may need the first rows: they are read now and handed out first.
  const prefetched: unknown[][] = [];
  const mapped = declared.map((c) => mapDeclaredType(c.name, c.declaredType));
  const unknown = () => mapped.some((m) => m === undefined);
  while (unknown() && prefetched.length < INFERENCE_ROWS) {
    const row = nextRaw();
    if (!row) break;
    prefetched.push(row);
    for (let i = 0; i < mapped.length; i++) {
      if (mapped[i] === undefined && row[i] !== null) mapped[i] = inferColumn(declared[i]!.name, row[i]);
    }
  }
  const columns: Column[] = mapped.map(
    (m, i) => m ?? { name: declared[i]!.name, type: 'string', nullable: true },
  );
  const converters: [number, Converter][] = [];
  columns.forEach((column, i) => {
    // A declared TEXT or REAL column already yields strings or doubles (SQLite's affinity converts
    // on the way in and out), so it needs no per-value work; that is most columns of a wide table.
    const hasAffinity = declared[i]!.declaredType !== null;
    if (
      hasAffinity &&
      (column.type === 'string' ||
        (column.type === 'float64' && !/NUM|DEC/i.test(declared[i]!.declaredType!)))
    ) {
      return;
    }
    const converter = converterFor(column);
    if (converter) converters.push([i, converter]);
  });
  const convert = (row: unknown[]): RowValue[] => {
    for (const [i, fn] of converters) {
      const value = row[i];
      if (value !== null) row[i] = fn(value);
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

  return {
    columns,
    async *batches(batchSize: number) {
      try {
        let batch: RowValue[][] = prefetched.splice(0).map(convert);
        while (!done || batch.length > 0) {
          checkLimits();
          while (batch.length < batchSize) {
            const row = nextRaw();
            if (!row) break;
            batch.push(convert(row));
            // A timeout inside one huge batch still fires reasonably close to its time.
            if ((batch.length & 4095) === 0) checkLimits();
          }
          if (batch.length === 0) break;
          yield batch;
          batch = [];
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
    },
    async close() {
      close();
    },
  };
}

/** Declared SQLite type → column type, following SQLite's own affinity rules where they apply. */
export function mapDeclaredType(name: string, declaredType: string | null): Column | undefined {
  if (!declaredType) return undefined;
  const type = declaredType.toUpperCase();
  const column = (t: Column['type'], extra: Partial<Column> = {}): Column => ({
    name,
    type: t,
    nullable: true,
    ...extra,
  });
  if (type.includes('BOOL')) return column('boolean');
  if (type.includes('DATETIME') || type.includes('TIMESTAMP')) return column('timestamp');
  if (type.includes('DATE')) return column('date');
  if (type.includes('JSON')) return column('json');
  if (type.includes('INT')) return column('int64');
  if (type.includes('DECIMAL') || type.includes('NUMERIC')) {
    const match = /\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/.exec(type);
    if (!match) return column('float64');
    const precision = Number(match[1]);
    const scale = Number(match[2] ?? 0);
    if (precision < 1 || precision > 76 || scale > precision) return column('float64');
    return column('decimal', { precision, scale });
  }
  if (type.includes('CHAR') || type.includes('CLOB') || type.includes('TEXT')) return column('string');
  if (type.includes('BLOB')) return column('binary');
  if (type.includes('REAL') || type.includes('FLOA') || type.includes('DOUB')) return column('float64');
  return undefined;
}

function inferColumn(name: string, value: unknown): Column {
  if (typeof value === 'bigint') return { name, type: 'int64', nullable: true };
  if (typeof value === 'number') return { name, type: 'float64', nullable: true };
  if (value instanceof Uint8Array) return { name, type: 'binary', nullable: true };
  return { name, type: 'string', nullable: true };
}

const narrowInteger = (value: bigint): number | bigint =>
  value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;

function converterFor(column: Column): Converter | undefined {
  switch (column.type) {
    case 'int64':
      return (v) => (typeof v === 'bigint' ? narrowInteger(v) : (v as RowValue));
    case 'float64':
      return (v) => (typeof v === 'bigint' ? Number(v) : (v as RowValue));
    case 'boolean':
      return (v) => (typeof v === 'bigint' || typeof v === 'number' ? v !== 0n && v !== 0 : (v as RowValue));
    case 'decimal':
      if ((column.precision ?? 18) > 18) return (v) => String(v);
      return (v) => (typeof v === 'bigint' ? narrowInteger(v) : (v as RowValue));
    case 'timestamp':
    case 'date':
      return toDate;
    case 'json':
      return (v) => {
        if (typeof v !== 'string') return v as RowValue;
        try {
          return JSON.parse(v) as RowValue;
        } catch {
          return v;
        }
      };
    case 'string':
      return (v) =>
        typeof v === 'string'
          ? v
          : typeof v === 'bigint' || typeof v === 'number'
            ? String(v)
            : (v as RowValue);
    default:
      return undefined;
  }
}

/** Dates are stored as ISO text (SQLite's own 'YYYY-MM-DD HH:MM:SS' is UTC) or epoch milliseconds. */
function toDate(value: unknown): RowValue {
  if (typeof value === 'bigint') return new Date(Number(value));
  if (typeof value === 'number') return new Date(value);
  if (typeof value === 'string') {
    let text = value.trim();
    if (/^\d{4}-\d{2}-\d{2} \d/.test(text)) text = text.replace(' ', 'T');
    // Without a zone, JS would read a date-time as local time; SQLite's functions write UTC.
    if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += 'Z';
    const date = new Date(text);
    return Number.isNaN(date.getTime()) ? value : date;
  }
  return value as RowValue;
}
