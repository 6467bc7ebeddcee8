import {
  BackhaulError,
  type DataSource,
  isAbortReason,
  positiveIntegerOption,
  type QueryCursor,
  type QueryRequest,
  resolveQueryLimits,
} from '@backhaul/core';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { openColumnarCursor } from './postgres-columnar-cursor.js';
import { openPostgresCursor } from './postgres-cursor.js';
import { toBackhaulError } from './postgres-errors.js';
import { cursorTypes } from './postgres-types.js';
import { WireConversation } from './wire-conversation.js';

export interface PostgresDataSourceOptions {
  /** `postgres://user:password@host:5432/db`. Without it (and without `pool`) pg reads the PG* variables. */
  connectionString?: string;
  /** A pool of your own; it is not ended by `close()`. */
  pool?: pg.Pool;
  /** Connections of the pool this source creates (default 10): at most this many queries at once. */
  poolSize?: number;
  /** statement_timeout of each query without its own `timeoutMs` (default 300 000 ms = 5 min). */
  statementTimeoutMs?: number;
  /** Hard cap on rows per query, whatever the request asks (default: none). */
  maxRows?: number;
}

export const DEFAULT_STATEMENT_TIMEOUT_MS = 300_000;
const DEFAULT_POOL_SIZE = 10;

/**
 * A `DataSource` over PostgreSQL with pg and pg-cursor. Asked for `columnar` (file mode), it reads
 * the rows straight into column vectors instead (postgres-columnar-cursor.ts). Each query runs in its own
 * `BEGIN TRANSACTION READ ONLY`, so PostgreSQL itself refuses every write — INSERT, DDL, a
 * data-modifying CTE, nextval() — whatever the SQL looks like; rows stream off a server-side
 * portal in the batch sizes the gateway asks for.
 */
export function createPostgresDataSource(options: PostgresDataSourceOptions = {}): DataSource {
  const statementTimeoutMs =
    positiveIntegerOption(options.statementTimeoutMs, 'statementTimeoutMs') ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const sourceMaxRows = positiveIntegerOption(options.maxRows, 'maxRows') ?? Number.POSITIVE_INFINITY;
  const ownsPool = options.pool === undefined;
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.connectionString,
      max: positiveIntegerOption(options.poolSize, 'poolSize') ?? DEFAULT_POOL_SIZE,
    });
  // An idle connection that the server drops (restart, idle timeout) emits 'error' on the pool;
  // without a listener that would crash the gateway. The pool discards the connection itself.
  if (ownsPool) pool.on('error', () => undefined);
  /** Resolves when each query's connection is back; `close()` waits for all of them. */
  const open = new Set<Promise<void>>();
  const cursors = new Set<QueryCursor>();
  let closed = false;

  return {
    specificationVersion: 'v1',
    name: 'postgres',
    async query(request: QueryRequest) {
      request.signal?.throwIfAborted();
      if (closed) throw new BackhaulError('service-unavailable', 'The PostgreSQL data source is closed');
      const { timeoutMs, maxRows } = resolveQueryLimits(request, {
        statementTimeoutMs,
        maxRows: sourceMaxRows,
      });

      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw toBackhaulError(error);
      }
      let released!: () => void;
      const tracked = new Promise<void>((resolve) => {
        released = resolve;
      });
      open.add(tracked);
      void tracked.then(() => open.delete(tracked));

      try {
        request.signal?.throwIfAborted();
        // One round trip: the transaction and every session setting it needs, reverted by ROLLBACK.
        // Fixed DateStyle/TimeZone/bytea_output make the text the type parsers read independent of
        // the server's and the role's defaults; extra_float_digits = 1 makes real and double text
        // the shortest exact decimal (a role's 0 would print `real` with 6 digits, losing bits).
        // The closing SELECT takes the transaction's first snapshot, after which PostgreSQL
        // refuses `SET TRANSACTION READ WRITE` ("must be set before any query"): the read-only
        // mode can no longer be switched off by the query.
        await client.query(
          `BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = ${timeoutMs}; ` +
            `SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL bytea_output = 'hex'; ` +
            `SET LOCAL extra_float_digits = 1; SELECT 1`,
        );
      } catch (error) {
        await client.query('ROLLBACK').then(
          () => client.release(),
          (rollbackError: Error) => client.release(rollbackError),
        );
        released();
        throw BackhaulError.isInstance(error) || isAbortReason(error, request.signal)
          ? error
          : toBackhaulError(error);
      }

      const onReleased = () => {
        if (queryCursor) cursors.delete(queryCursor);
        released();
      };
      let queryCursor: QueryCursor | undefined;
      const session = {
        client,
        maxRows,
        deadlineMs: request.timeoutMs,
        statementTimeoutMs: timeoutMs,
        signal: request.signal,
        onReleased,
      };
      // Both paths speak the extended protocol (Parse/Bind/Execute), which takes exactly one
      // statement: `SELECT 1; DROP TABLE t` is refused by PostgreSQL before anything runs.
      queryCursor =
        request.columnar && WireConversation.canBorrow(client)
          ? await openColumnarCursor({ ...session, sql: request.sql, params: request.params })
          : await openPostgresCursor({
              ...session,
              cursor: client.query(
                new Cursor(request.sql, request.params, { rowMode: 'array', types: cursorTypes }),
              ),
            });
      cursors.add(queryCursor);
      return queryCursor;
    },
    async close() {
      closed = true;
      // Cursors still open are cancelled and rolled back; the pool can only end after that.
      await Promise.all([...cursors].map((cursor) => cursor.close()));
      await Promise.all(open);
      if (ownsPool) await pool.end();
    },
  };
}
