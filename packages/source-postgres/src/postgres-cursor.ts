import {
  BackhaulError,
  type Column,
  checkBatchSize,
  type QueryCursor,
  type RowValue,
  uniqueColumnNames,
} from '@backhaul/core';
import type pg from 'pg';
import type Cursor from 'pg-cursor';
import { type ListParser, listParserFor, parseListsInRows } from './postgres-arrays.js';
import { noResultError } from './postgres-errors.js';
import { CancellableRequests, rollbackAndRelease } from './postgres-requests.js';
import { columnFromField } from './postgres-types.js';

/** Rows read inside `query()` to learn the columns (pg-cursor reports fields with the first read). */
const FIRST_READ_ROWS = 100;

export interface PostgresCursorSession {
  client: pg.PoolClient;
  /** Already submitted on `client`, inside a READ ONLY transaction. */
  cursor: Cursor;
  /** Rows the caller may receive at most (Infinity when uncapped). */
  maxRows: number;
  /** Whole-query deadline in ms, from the request; the per-fetch limit is statement_timeout. */
  deadlineMs: number | undefined;
  /** For the error message of a statement_timeout. */
  statementTimeoutMs: number;
  signal: AbortSignal | undefined;
  /** Called once the connection went back to the pool (or was destroyed). */
  onReleased: () => void;
}

/**
 * Wraps a submitted pg-cursor as a `QueryCursor`. The first rows are read before this resolves,
 * since PostgreSQL describes the columns only alongside them; every later read asks for exactly
 * the rows still missing from a batch, and one batch is read ahead while the caller holds the
 * current one: at most two batches are held at a time, and `maxRows` is never exceeded on the
 * wire either (a read never asks past it).
 *
 * Ending is always the same: let the running fetch finish (a cancel request cuts it short when the
 * caller aborts, closes or the deadline passes), close the portal, ROLLBACK — the transaction is
 * read-only, there is nothing to commit — and give the connection back.
 */
export async function openPostgresCursor(session: PostgresCursorSession): Promise<QueryCursor> {
  const { client, cursor, maxRows } = session;
  let taken = 0;
  let exhausted = false;
  let ending: Promise<void> | undefined;
  let connectionError: Error | undefined;

  const requests = new CancellableRequests(client, session);
  const onConnectionError = (error: Error) => {
    // pg fails the running fetch with the same error; listening keeps it from crashing the process.
    connectionError ??= error;
  };
  client.on('error', onConnectionError);

  const read = (count: number) =>
    new Promise<{ rows: RowValue[][]; fields: pg.FieldDef[] }>((resolve, reject) => {
      cursor.read(count, (error, rows, result) => {
        if (error) reject(error);
        else resolve({ rows: rows as RowValue[][], fields: result?.fields ?? [] });
      });
    });

  /** Per column, how its arrays become lists (pg gives their text); known with the first fields. */
  let listParsers: (ListParser | undefined)[] | undefined;
  const fetch = (wanted: number) =>
    requests.run(async () => {
      // pg-cursor reads *every* row when asked for 0: never let that happen.
      const count = Math.max(1, Math.min(wanted, maxRows - taken));
      const result = await read(count);
      if (!listParsers && result.fields.length > 0) listParsers = result.fields.map(listParserFor);
      if (listParsers) parseListsInRows(listParsers, result.rows);
      taken += result.rows.length;
      if (result.rows.length < count) exhausted = true;
      return result;
    });

  const end = () => {
    ending ??= (async () => {
      await requests.settle();
      await rollbackAndRelease(client, connectionError, async () => {
        // After an error or the last row the portal is already gone (and closing would wait
        // for a ReadyForQuery that never comes).
        if (cursor.state !== 'done' && cursor.state !== 'error') await cursor.close();
      });
      client.removeListener('error', onConnectionError);
      session.onReleased();
    })();
    return ending;
  };

  let columns: readonly Column[];
  let prefetched: RowValue[][];
  try {
    const first = await fetch(FIRST_READ_ROWS);
    if (first.fields.length === 0) {
      throw noResultError();
    }
    columns = uniqueColumnNames(first.fields.map(columnFromField));
    prefetched = first.rows;
  } catch (error) {
    await end();
    throw error;
  }

  /** The read started ahead of the consumer's next request (at most one, like every read). */
  let ahead: Promise<RowValue[][]> | undefined;
  const more = () => !exhausted && taken < maxRows;

  return {
    columns,
    async *batches(batchSize: number) {
      checkBatchSize(batchSize);
      try {
        while (true) {
          // Checked even when every row is already in hand: an abort must end iteration with an error.
          requests.throwIfInterrupted();
          while (prefetched.length < batchSize && (ahead || more())) {
            const rows = await (ahead ?? fetch(batchSize - prefetched.length).then((r) => r.rows));
            ahead = undefined;
            if (prefetched.length === 0) prefetched = rows;
            else for (const row of rows) prefetched.push(row);
          }
          if (prefetched.length === 0) return;
          let batch: RowValue[][];
          if (prefetched.length > batchSize) {
            batch = prefetched.splice(0, batchSize);
          } else {
            batch = prefetched;
            prefetched = [];
          }
          // Read ahead while the consumer works on this batch: PostgreSQL computes the next rows
          // and pg parses them off the socket in the time the gateway encodes and uploads, instead
          // of after (one fetch round trip and the backend's work per batch were idle time).
          if (!ahead && more() && prefetched.length < batchSize) {
            ahead = fetch(batchSize - prefetched.length).then((r) => r.rows);
            // Awaited by the next turn; if the consumer stops first, `end()` waits for it instead.
            ahead.catch(() => undefined);
          }
          yield batch;
        }
      } finally {
        // Left early (break, an error downstream) with a read ahead still running: cancel it, as
        // close() would, rather than hold the connection until PostgreSQL finishes rows nobody takes.
        if (ahead && !requests.interrupted) {
          requests.interrupt(new BackhaulError('query-failed', 'The cursor was closed'));
        }
        await end();
      }
    },
    async close() {
      requests.interrupt(new BackhaulError('query-failed', 'The cursor was closed'));
      await end();
    },
  };
}
