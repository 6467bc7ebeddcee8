import {
  BackhaulError,
  type Column,
  checkBatchSize,
  type QueryCursor,
  type RowValue,
  uniqueColumnNames,
  watchQueryInterruptions,
} from '@backhaul/core';
import type { FieldPacket, PoolConnection } from 'mysql2';
import { toBackhaulError } from './mysql-errors.js';
import { columnFromField } from './mysql-types.js';

/** Rows buffered before the first `batches()` call tells the real batch size. */
const INITIAL_BUFFER_ROWS = 1000;
/** How long a stopped query may take to wind down before its connection is destroyed instead. */
const DRAIN_TIMEOUT_MS = 10_000;

export interface MysqlCursorSession {
  connection: PoolConnection;
  sql: string;
  params: readonly (string | number | boolean | null)[];
  /** Rows the caller may receive at most (Infinity when uncapped). */
  maxRows: number;
  /** Whole-query deadline in ms, from the request. */
  deadlineMs: number | undefined;
  /** For the error message of a server-side statement timeout. */
  statementTimeoutMs: number;
  signal: AbortSignal | undefined;
  /** How long a result that reached maxRows may take to end by itself (sql_select_limit) before a kill. */
  cappedEndGraceMs: number;
  /** Stops the statement running on a connection (KILL QUERY from another connection). */
  killQuery: (threadId: number) => Promise<void>;
  /** Ends the read-only transaction and hands the connection back; `clean` false destroys it. */
  finish: (clean: boolean, resultSet: boolean) => Promise<void>;
}

/**
 * Streams a statement's rows with mysql2's text protocol, `rowsAsArray`, and real backpressure:
 * once a batch worth of rows is buffered the connection's socket is paused, so the server blocks
 * on its send buffer instead of this process buffering the whole result.
 *
 * Ending before the last row (close, abort, deadline, maxRows reached) asks the server to stop with
 * KILL QUERY, drains what is already on the wire, then rolls back and releases the connection.
 */
export async function openMysqlCursor(session: MysqlCursorSession): Promise<QueryCursor> {
  const { connection, maxRows, signal } = session;
  let columns: Column[] | undefined;
  let converters: [number, (value: unknown) => RowValue][] = [];
  let buffer: RowValue[][] = [];
  /** Buffered rows at which reading pauses: the batch size being filled. */
  let highWater = Math.min(INITIAL_BUFFER_ROWS, maxRows);
  let taken = 0;
  let paused = false;
  let ended = false;
  let failure: unknown;
  /** Set once this side decided to stop the statement: its rows and its "interrupted" error are moot. */
  let stopping = false;
  let interruption: unknown;
  let resultSet = false;
  /** Whoever waits for the next row, the end or an interruption (the batch loop, a draining close). */
  let waiters: (() => void)[] = [];
  let ending: Promise<void> | undefined;

  const wake = () => {
    const woken = waiters;
    waiters = [];
    for (const resolve of woken) resolve();
  };
  const waitForProgress = () =>
    new Promise<void>((resolve) => {
      waiters.push(resolve);
    });
  const resume = () => {
    if (!paused) return;
    paused = false;
    connection.resume();
  };

  const query = connection.query({
    sql: session.sql,
    values: session.params as unknown[],
    rowsAsArray: true,
    // Per query, so a pool of the caller's with other settings still yields exact values.
    supportBigNumbers: true,
    dateStrings: true,
  });
  query.on('fields', (fields: FieldPacket[] | undefined) => {
    // mysql2 also emits 'fields' (undefined) for a statement that answers with an OK packet.
    if (!fields) return;
    resultSet = true;
    const mapped = fields.map(columnFromField);
    columns = uniqueColumnNames(mapped.map((m) => m.column)) as Column[];
    converters = [];
    mapped.forEach((m, i) => {
      if (m.convert) converters.push([i, m.convert]);
    });
    wake();
  });
  query.on('result', (row: unknown) => {
    // A statement without a result set reports an OK packet here instead of rows.
    if (!Array.isArray(row) || stopping) return;
    for (const [i, convert] of converters) {
      const value = row[i];
      if (value !== null) row[i] = convert(value);
    }
    if (taken >= maxRows) {
      // A row past the cap: the statement has a LIMIT of its own above sql_select_limit. Stop it.
      void stop();
      return;
    }
    buffer.push(row as RowValue[]);
    taken++;
    // At the cap the end of the result is the next packet: reading on lets it arrive.
    if (taken < maxRows && buffer.length >= highWater && !paused) {
      paused = true;
      connection.pause();
    }
    wake();
  });
  query.on('error', (error: unknown) => {
    failure ??= error;
    ended = true;
    wake();
  });
  query.on('end', () => {
    ended = true;
    wake();
  });

  /** Stops the statement on the server and lets the connection read on to its end. */
  let killing: Promise<void> | undefined;
  const stop = async () => {
    if (stopping || ended) return;
    stopping = true;
    resume();
    killing = session.killQuery(connection.threadId).catch(() => undefined);
    await killing;
  };

  /** True once the statement ended (rows, error or kill), false when `ms` passed first. */
  const waitForEnd = async (ms: number): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, ms, false);
    });
    try {
      while (!ended) {
        if ((await Promise.race([waitForProgress().then(() => true), expired])) === false) return false;
      }
      return true;
    } finally {
      clearTimeout(timer);
    }
  };

  const interrupt = (reason: unknown) => {
    interruption ??= reason;
    wake();
  };
  const stopWatching = watchQueryInterruptions({ signal, deadlineMs: session.deadlineMs }, interrupt);
  // A checked-out connection that breaks emits 'error' on itself; unheard, that would crash the gateway.
  const onConnectionError = (error: unknown) => {
    failure ??= error;
    ended = true;
    wake();
  };
  connection.on('error', onConnectionError);

  const throwIfFailed = () => {
    if (interruption !== undefined) throw interruption;
    // An error caused by our own KILL QUERY (maxRows reached) is not a failure of the query.
    if (failure !== undefined && !stopping) {
      throw toBackhaulError(failure, { timeoutMs: session.statementTimeoutMs, sql: session.sql });
    }
  };

  const end = () => {
    ending ??= (async () => {
      stopWatching();
      let clean = true;
      if (!ended && taken >= maxRows && interruption === undefined) {
        // The server stops at sql_select_limit by itself; a kill is only needed if it does not.
        resume();
        await waitForEnd(session.cappedEndGraceMs);
      }
      if (!ended) {
        void stop();
        clean = await waitForEnd(DRAIN_TIMEOUT_MS);
      }
      // A KILL QUERY travels on another connection and may land after the statement ended on its
      // own: on a reused connection it would interrupt the next query. Wait for it, then retire
      // the connection rather than hand it out again.
      if (stopping) {
        await killing;
        clean = false;
      }
      connection.removeListener('error', onConnectionError);
      // A broken connection (not a SQL error, which leaves it usable) is not handed out again.
      if (failure !== undefined && !(failure as { sqlState?: unknown }).sqlState && !stopping) clean = false;
      await session.finish(clean, resultSet);
    })();
    return ending;
  };

  try {
    while (columns === undefined && !ended) {
      throwIfFailed();
      await waitForProgress();
    }
    throwIfFailed();
    if (columns === undefined) {
      throw new BackhaulError(
        'bad-request',
        'The statement returns no rows; only queries (SELECT, WITH … SELECT, VALUES, TABLE) are allowed',
      );
    }
  } catch (error) {
    await end();
    throw error;
  }
  const resolvedColumns = columns;

  return {
    columns: resolvedColumns,
    async *batches(batchSize: number) {
      checkBatchSize(batchSize);
      highWater = Math.min(batchSize, maxRows);
      try {
        while (true) {
          throwIfFailed();
          while (buffer.length < batchSize && !ended && !stopping && taken < maxRows) {
            // Waiting starts before resuming: resume() may replay the rest of the result at once.
            const progress = waitForProgress();
            resume();
            await progress;
            throwIfFailed();
          }
          throwIfFailed();
          if (buffer.length === 0) return;
          let batch: RowValue[][];
          if (buffer.length <= batchSize) {
            batch = buffer;
            buffer = [];
          } else {
            batch = buffer.splice(0, batchSize);
          }
          yield batch;
        }
      } finally {
        await end();
      }
    },
    async close() {
      interrupt(new BackhaulError('query-failed', 'The cursor was closed'));
      await end();
    },
  };
}
