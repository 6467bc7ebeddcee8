import {
  BackhaulError,
  type Column,
  type ColumnBatch,
  checkBatchSize,
  columnBatchToRows,
  type QueryCursor,
  type RowValue,
  uniqueColumnNames,
  watchQueryInterruptions,
} from '@backhaul/core';
import type { FieldPacket, PoolConnection } from 'mysql2';
import { BatchDecoder, type ColumnPlan, planColumns } from './mysql-column-decoding.js';
import { toBackhaulError } from './mysql-errors.js';
import { readRowPackets } from './mysql-row-packets.js';
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
  /**
   * Decode row packets straight into column batches (`columnBatches`, for file mode) instead of
   * a JS value per cell (mysql-column-decoding.ts).
   */
  columnar: boolean;
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
 * A columnar cursor reads the same result, but each row packet is decoded into the batch being
 * filled (mysql-row-packets.ts says how); reading starts at the first `columnBatches` call, and
 * the next batch fills while the caller holds the current one, so at most two are held.
 *
 * Ending before the last row (close, abort, deadline, maxRows reached) asks the server to stop with
 * KILL QUERY, drains what is already on the wire, then rolls back and releases the connection.
 */
export async function openMysqlCursor(session: MysqlCursorSession): Promise<QueryCursor> {
  const { connection, maxRows, signal } = session;
  let columns: Column[] | undefined;
  let converters: [number, (value: unknown) => RowValue][] = [];
  let buffer: RowValue[][] = [];
  let plan: ColumnPlan | undefined;
  /** The column batch being filled (columnar cursors). */
  let decoder: BatchDecoder | undefined;
  /** A row the columnar cursor could not decode (or a result it cannot read): the query's failure. */
  let decodeFailure: unknown;
  /** Buffered rows at which reading pauses: the batch size being filled. */
  let highWater = session.columnar ? 0 : Math.min(INITIAL_BUFFER_ROWS, maxRows);
  const buffered = () => (session.columnar ? (decoder?.rowCount ?? 0) : buffer.length);
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
    // Called per row: nothing to allocate while nobody waits.
    if (waiters.length === 0) return;
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
  /** Whether a row of the result is to be kept: not while the statement is being stopped, nor past the cap. */
  const admit = (): boolean => {
    if (stopping) return false;
    if (taken >= maxRows) {
      // A row past the cap: the statement has a LIMIT of its own above sql_select_limit. Stop it.
      void stop();
      return false;
    }
    return true;
  };
  /** A row was stored: count it, pause reading once the batch being filled is full. */
  const stored = () => {
    taken++;
    // At the cap the end of the result is the next packet: reading on lets it arrive.
    if (taken < maxRows && buffered() >= highWater && !paused) {
      paused = true;
      connection.pause();
    }
    wake();
  };
  /** Ends a columnar read that cannot go on: the statement is stopped, the error thrown from the batches. */
  const refuse = (error: unknown) => {
    decodeFailure ??= BackhaulError.isInstance(error)
      ? error
      : new BackhaulError('query-failed', (error as Error).message, { cause: error });
    void stop();
    wake();
  };
  if (session.columnar) {
    readRowPackets(query, (packet) => {
      if (decodeFailure !== undefined) return;
      // Thrown into mysql2's packet handling, an error would break the connection: it fails the query.
      try {
        if (!admit()) return;
        decoder!.addRow(packet);
        stored();
      } catch (error) {
        refuse(error);
      }
    });
  }
  query.on('fields', (fields: FieldPacket[] | undefined) => {
    // mysql2 also emits 'fields' (undefined) for a statement that answers with an OK packet.
    if (!fields) return;
    if (session.columnar && plan !== undefined) {
      // A procedure's second result set has other columns than the file being written.
      refuse(new BackhaulError('bad-request', 'The statement returns more than one result set'));
      return;
    }
    resultSet = true;
    if (session.columnar) {
      plan = planColumns(fields);
      columns = uniqueColumnNames(plan.columns) as Column[];
      // No row is read before the first batch's size is known: each batch is one decoder's. A
      // statement being stopped reads on to its end instead.
      if (!stopping) {
        paused = true;
        connection.pause();
      }
      wake();
      return;
    }
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
    if (!Array.isArray(row)) return;
    if (session.columnar) {
      refuse(new Error('mysql2 parsed a row the columnar reader should have read (mysql-row-packets.ts)'));
      return;
    }
    if (!admit()) return;
    for (const [i, convert] of converters) {
      const value = row[i];
      if (value !== null) row[i] = convert(value);
    }
    buffer.push(row as RowValue[]);
    stored();
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
    if (decodeFailure !== undefined) throw decodeFailure;
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
  /** Reads on until `batchSize` rows are buffered, or the result (or the cap) ends. */
  const fill = async (batchSize: number) => {
    throwIfFailed();
    while (buffered() < batchSize && !ended && !stopping && taken < maxRows) {
      // Waiting starts before resuming: resume() may replay the rest of the result at once.
      const progress = waitForProgress();
      resume();
      await progress;
      throwIfFailed();
    }
    throwIfFailed();
  };
  const close = async () => {
    interrupt(new BackhaulError('query-failed', 'The cursor was closed'));
    await end();
  };

  if (plan !== undefined) {
    const columnPlan = plan;
    async function* columnBatches(batchSize: number): AsyncGenerator<ColumnBatch> {
      checkBatchSize(batchSize);
      highWater = Math.min(batchSize, maxRows);
      decoder = new BatchDecoder(columnPlan, highWater);
      try {
        while (true) {
          await fill(batchSize);
          if (decoder.rowCount === 0) return;
          const batch = decoder.batch();
          decoder = new BatchDecoder(columnPlan, highWater);
          // The next batch decodes while the caller encodes this one; it pauses reading when full.
          if (!ended && !stopping && taken < maxRows) resume();
          yield batch;
        }
      } finally {
        await end();
      }
    }
    return {
      columns: resolvedColumns,
      columnBatches,
      async *batches(batchSize: number) {
        for await (const batch of columnBatches(batchSize)) yield columnBatchToRows(resolvedColumns, batch);
      },
      close,
    };
  }

  return {
    columns: resolvedColumns,
    async *batches(batchSize: number) {
      checkBatchSize(batchSize);
      highWater = Math.min(batchSize, maxRows);
      try {
        while (true) {
          await fill(batchSize);
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
    close,
  };
}
