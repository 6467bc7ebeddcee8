import {
  BackhaulError,
  type ColumnBatch,
  checkBatchSize,
  columnBatchToRows,
  type QueryCursor,
  uniqueColumnNames,
} from '@backhaul/core';
import type pg from 'pg';
import { BatchDecoder, type ColumnPlan, planColumns } from './postgres-column-decoding.js';
import { noResultError, toBackhaulError } from './postgres-errors.js';
import { CancellableRequests, rollbackAndRelease } from './postgres-requests.js';
import {
  Backend,
  bind,
  type DescribedField,
  execute,
  FLUSH,
  parseAndDescribe,
  readParameterCount,
  readRowDescription,
  type SqlParameter,
} from './postgres-wire.js';
import { WireConversation } from './wire-conversation.js';

export interface ColumnarCursorSession {
  /** Idle, inside a READ ONLY transaction. */
  client: pg.PoolClient;
  sql: string;
  params: readonly SqlParameter[];
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
 * A `QueryCursor` that reads DataRows straight into column vectors (`columnBatches`), for file mode.
 * The statement is parsed and described first, so the columns are known before any row is computed,
 * and each column is bound to the result format its decoder reads fastest (postgres-column-decoding).
 * Each batch is one Execute of the portal, and the next one is asked for while the caller holds the
 * current one: at most two batches are held, and `maxRows` is never exceeded on the wire.
 *
 * Ending is the same as the row cursor's: let the running Execute finish (a cancel request cuts it
 * short when the caller aborts, closes or the deadline passes), Sync, ROLLBACK, release.
 */
export async function openColumnarCursor(session: ColumnarCursorSession): Promise<QueryCursor> {
  const { client, maxRows } = session;
  const wire = new WireConversation(client);
  const requests = new CancellableRequests(client, session);
  let ending: Promise<void> | undefined;
  // pg reports a dead socket on the client too; listening keeps it from crashing the process.
  const onConnectionError = () => undefined;
  client.on('error', onConnectionError);

  /** One request and its answer (see WireConversation.exchange), cancellable while it runs. */
  const converse = <T>(
    request: Buffer,
    onMessage: (type: number, bytes: Buffer, start: number, end: number) => T | undefined,
  ): Promise<T> => requests.run(() => wire.exchange(request, onMessage));

  const end = () => {
    ending ??= (async () => {
      await requests.settle();
      // Sync, ReadyForQuery, and pg owns its socket again: the rest is pg's.
      const ended = await wire.end().then(
        () => undefined,
        (error: unknown) => error,
      );
      await rollbackAndRelease(client, wire.failure);
      client.removeListener('error', onConnectionError);
      session.onReleased();
      if (ended !== undefined) throw toBackhaulError(ended);
    })();
    return ending;
  };

  let plan: ColumnPlan;
  try {
    let parameterCount = 0;
    const fields = await converse(parseAndDescribe(session.sql), (type, bytes, start) => {
      if (type === Backend.ParseComplete) return undefined;
      if (type === Backend.ParameterDescription) {
        parameterCount = readParameterCount(bytes, start);
        return undefined;
      }
      if (type === Backend.RowDescription) return readRowDescription(bytes, start);
      if (type === Backend.NoData) return [] as DescribedField[];
      throw unexpected(type);
    });
    if (fields.length === 0) throw noResultError();
    if (parameterCount !== session.params.length) {
      throw new BackhaulError(
        'bad-request',
        `The query takes ${parameterCount} parameter(s); ${session.params.length} given`,
      );
    }
    plan = planColumns(fields);
    // Bound (and the executor started) now, so what PostgreSQL refuses before the first row — a
    // missing privilege, a bad parameter value — fails query() itself, as on the row path.
    await converse(Buffer.concat([bind(session.params, plan.formats), FLUSH]), (type) =>
      type === Backend.BindComplete ? true : unexpected(type),
    );
  } catch (error) {
    await end();
    throw error;
  }

  let taken = 0;
  let complete = false;
  let sizeHint: number[] = [];
  const more = () => !complete && taken < maxRows;

  const fetch = async (wanted: number): Promise<ColumnBatch> => {
    // Execute with 0 rows means every row: never ask for that.
    const count = Math.max(1, Math.min(wanted, maxRows - taken));
    const decoder = new BatchDecoder(plan, count, sizeHint);
    let decodeError: unknown;
    await converse(execute(count), (type, bytes, start, end) => {
      switch (type) {
        case Backend.DataRow:
          // A value the column cannot hold fails the query, not the connection: the rest of the
          // fetch is still read off the wire so the conversation stays in step.
          if (decodeError === undefined) {
            try {
              decoder.addRow(bytes, start, end);
            } catch (error) {
              decodeError = error;
            }
          }
          return undefined;
        case Backend.PortalSuspended:
          return true;
        case Backend.CommandComplete:
        case Backend.EmptyQueryResponse:
          complete = true;
          return true;
        default:
          throw unexpected(type);
      }
    });
    if (decodeError !== undefined) {
      throw new BackhaulError('query-failed', (decodeError as Error).message, { cause: decodeError });
    }
    taken += decoder.rowCount;
    if (decoder.rowCount < count) complete = true;
    sizeHint = decoder.bytesPerRow();
    return decoder.batch();
  };

  const columns = uniqueColumnNames(plan.columns);
  async function* columnBatches(batchSize: number): AsyncGenerator<ColumnBatch> {
    checkBatchSize(batchSize);
    let ahead: Promise<ColumnBatch> | undefined;
    try {
      ahead = more() ? fetch(batchSize) : undefined;
      while (ahead) {
        requests.throwIfInterrupted();
        const batch = await ahead;
        ahead = undefined;
        // Asked for before this batch is handed over: PostgreSQL computes the next rows while the
        // consumer encodes these. Awaited by the next turn, or by end() if the consumer stops.
        if (more()) {
          ahead = fetch(batchSize);
          ahead.catch(() => undefined);
        }
        if (batch.rowCount > 0) yield batch;
      }
      requests.throwIfInterrupted();
    } finally {
      if (ahead && !requests.interrupted) {
        requests.interrupt(new BackhaulError('query-failed', 'The cursor was closed'));
      }
      await end();
    }
  }

  return {
    columns,
    columnBatches,
    async *batches(batchSize: number) {
      for await (const batch of columnBatches(batchSize)) yield columnBatchToRows(columns, batch);
    },
    async close() {
      requests.interrupt(new BackhaulError('query-failed', 'The cursor was closed'));
      await end();
    },
  };
}

function unexpected(type: number): Error {
  return new Error(`PostgreSQL sent message '${String.fromCharCode(type)}' where the protocol has none`);
}
