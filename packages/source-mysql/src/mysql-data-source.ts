import {
  BackhaulError,
  type DataSource,
  isAbortReason,
  positiveIntegerOption,
  type QueryCursor,
  type QueryRequest,
  resolveQueryLimits,
} from '@backhaul/core';
import mysql, { type Pool, type PoolConnection, type PoolOptions } from 'mysql2';
import { openMysqlCursor } from './mysql-cursor.js';
import { toBackhaulError } from './mysql-errors.js';

export interface MysqlDataSourceOptions {
  /** `mysql://user:password@host:3306/db`. */
  uri?: string;
  /** Connection settings other than a URI (host, user, ssl…); merged under the ones this source needs. */
  connection?: PoolOptions;
  /**
   * A pool of your own; it is not ended by `close()`. Session settings are put back after each query,
   * at the cost of one more round trip. Do not set `decimalNumbers` or a `typeCast` on it.
   */
  pool?: Pool;
  /** Connections of the pool this source creates (default 10): at most this many queries at once. */
  poolSize?: number;
  /** Statement time limit of each query without its own `timeoutMs` (default 300 000 ms = 5 min). */
  statementTimeoutMs?: number;
  /** Hard cap on rows per query, whatever the request asks (default: none). */
  maxRows?: number;
}

export const DEFAULT_STATEMENT_TIMEOUT_MS = 300_000;
const DEFAULT_POOL_SIZE = 10;
/** ER_UNKNOWN_SYSTEM_VARIABLE: how MySQL answers MariaDB's max_statement_time, and the reverse. */
const UNKNOWN_SYSTEM_VARIABLE = 1193;
/** How long a capped result may take to end by itself before it is killed. */
const CAPPED_END_GRACE_MS = 1000;

type Dialect = 'mariadb' | 'mysql';

/**
 * MariaDB and MySQL name the statement time limit differently (seconds vs milliseconds) and the
 * read-only session flag too. `time_zone` makes TIMESTAMP text UTC; `sql_select_limit` lets the
 * server itself stop at maxRows.
 */
function sessionSettings(dialect: Dialect, timeoutMs: number, maxRows: number): string {
  const limit = Number.isFinite(maxRows) ? String(maxRows) : 'DEFAULT';
  return dialect === 'mariadb'
    ? `SET SESSION max_statement_time = ${timeoutMs / 1000}, time_zone = '+00:00', tx_read_only = 1, sql_select_limit = ${limit}`
    : `SET SESSION max_execution_time = ${timeoutMs}, time_zone = '+00:00', transaction_read_only = 1, sql_select_limit = ${limit}`;
}

function sessionDefaults(dialect: Dialect): string {
  return dialect === 'mariadb'
    ? 'SET SESSION max_statement_time = DEFAULT, time_zone = DEFAULT, tx_read_only = DEFAULT, sql_select_limit = DEFAULT'
    : 'SET SESSION max_execution_time = DEFAULT, time_zone = DEFAULT, transaction_read_only = DEFAULT, sql_select_limit = DEFAULT';
}

function run(
  connection: PoolConnection | Pool | mysql.Connection,
  sql: string,
  values?: unknown[],
): Promise<void> {
  return new Promise((resolve, reject) => {
    connection.query({ sql, values }, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * A `DataSource` over MySQL or MariaDB with mysql2. Each query runs in `START TRANSACTION READ
 * ONLY` on a session that is itself read-only, so the server refuses every write; rows stream
 * with backpressure in the batch sizes the gateway asks for; multiple statements are off.
 */
export function createMysqlDataSource(options: MysqlDataSourceOptions = {}): DataSource {
  const statementTimeoutMs =
    positiveIntegerOption(options.statementTimeoutMs, 'statementTimeoutMs') ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const sourceMaxRows = positiveIntegerOption(options.maxRows, 'maxRows') ?? Number.POSITIVE_INFINITY;
  const ownsPool = options.pool === undefined;
  const connectionOptions: PoolOptions = {
    ...options.connection,
    ...(options.uri === undefined ? {} : { uri: options.uri }),
    // Exact values without per-value work: BIGINT as a number when safe (text beyond 2^53),
    // DECIMAL as text, dates as the server's text (no shift through the gateway's time zone),
    // JSON as its text (so a JSON string value is never mistaken for JSON text).
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: false,
    dateStrings: true,
    jsonStrings: true,
    // `SELECT 1; DROP TABLE t` is a syntax error for the server, not two statements.
    multipleStatements: false,
  };
  const pool =
    options.pool ??
    mysql.createPool({
      ...connectionOptions,
      connectionLimit: positiveIntegerOption(options.poolSize, 'poolSize') ?? DEFAULT_POOL_SIZE,
    });
  // Idle connections that the server drops emit 'error'; the pool discards them itself.
  if (ownsPool) pool.on('connection', (connection) => connection.on('error', () => undefined));

  let dialect: Dialect | undefined;
  /** The session settings each connection of our own pool already has: unchanged ones are not resent. */
  const applied = new WeakMap<PoolConnection, string>();
  const open = new Set<Promise<void>>();
  const cursors = new Set<QueryCursor>();
  let closed = false;

  const applySettings = async (connection: PoolConnection, timeoutMs: number, maxRows: number) => {
    for (const candidate of dialect ? [dialect] : (['mariadb', 'mysql'] as const)) {
      const sql = sessionSettings(candidate, timeoutMs, maxRows);
      if (ownsPool && applied.get(connection) === sql) return;
      try {
        await run(connection, sql);
        dialect = candidate;
        if (ownsPool) applied.set(connection, sql);
        return;
      } catch (error) {
        if ((error as { errno?: unknown }).errno !== UNKNOWN_SYSTEM_VARIABLE || dialect) throw error;
      }
    }
  };

  /** KILL QUERY must come from another connection; ours opens one so a full pool cannot delay it. */
  const killQuery = async (threadId: number) => {
    if (!ownsPool) {
      await run(pool, 'KILL QUERY ?', [threadId]);
      return;
    }
    const killer = mysql.createConnection(connectionOptions);
    killer.on('error', () => undefined);
    try {
      await run(killer, 'KILL QUERY ?', [threadId]);
    } finally {
      killer.destroy();
    }
  };

  return {
    specificationVersion: 'v1',
    name: 'mysql',
    async query(request: QueryRequest) {
      request.signal?.throwIfAborted();
      if (closed) throw new BackhaulError('service-unavailable', 'The MySQL data source is closed');
      const { timeoutMs, maxRows } = resolveQueryLimits(request, {
        statementTimeoutMs,
        maxRows: sourceMaxRows,
      });

      let connection: PoolConnection;
      try {
        connection = await new Promise<PoolConnection>((resolve, reject) =>
          pool.getConnection((error, conn) => (error ? reject(error) : resolve(conn))),
        );
      } catch (error) {
        throw toBackhaulError(error);
      }
      let released!: () => void;
      const tracked = new Promise<void>((resolve) => {
        released = resolve;
      });
      open.add(tracked);
      void tracked.then(() => open.delete(tracked));

      const finish = async (clean: boolean, resultSet: boolean) => {
        try {
          if (!clean) throw new Error('connection in an unknown state');
          await run(connection, 'ROLLBACK');
          if (!ownsPool && dialect) await run(connection, sessionDefaults(dialect));
          // A statement without a result set (SET …) may have changed the session: set it all again.
          if (!resultSet) applied.delete(connection);
          connection.release();
        } catch {
          applied.delete(connection);
          connection.destroy();
        }
        released();
      };

      try {
        request.signal?.throwIfAborted();
        await applySettings(connection, timeoutMs, maxRows);
        await run(connection, 'START TRANSACTION READ ONLY');
      } catch (error) {
        await finish(true, false);
        throw BackhaulError.isInstance(error) || isAbortReason(error, request.signal)
          ? error
          : toBackhaulError(error, { timeoutMs });
      }

      let queryCursor: QueryCursor | undefined;
      queryCursor = await openMysqlCursor({
        connection,
        sql: request.sql,
        params: request.params,
        columnar: request.columnar === true,
        maxRows,
        deadlineMs: request.timeoutMs,
        statementTimeoutMs: timeoutMs,
        signal: request.signal,
        cappedEndGraceMs: CAPPED_END_GRACE_MS,
        killQuery,
        finish: async (clean, resultSet) => {
          if (queryCursor) cursors.delete(queryCursor);
          await finish(clean, resultSet);
        },
      });
      cursors.add(queryCursor);
      return queryCursor;
    },
    async close() {
      closed = true;
      await Promise.all([...cursors].map((cursor) => cursor.close()));
      await Promise.all(open);
      if (ownsPool) await new Promise<void>((resolve) => pool.end(() => resolve()));
    },
  };
}
