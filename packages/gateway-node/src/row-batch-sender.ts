import type { Column, Completion, RowValue } from '@backhaul/core';
import type { ProgressState } from './progress.js';
import { toJsonRows } from './row-values.js';
import type { AnswerScope, ServerApi } from './server-api.js';

export interface RowBatchSendOptions {
  api: ServerApi;
  commandId: string;
  columns: readonly Column[];
  batches: AsyncIterable<RowValue[][]> | Iterable<RowValue[][]>;
  progress: ProgressState;
  signal: AbortSignal;
  /** The span the batches are sent from and the command's logger. */
  scope?: AnswerScope;
}

type RowsCompletion = Extract<Completion, { kind: 'rows' }>;

/**
 * The rows flow of docs/protocol.md §5.3: each batch is posted as it comes off the cursor, with
 * one request in flight while the next batch is read, so the caller sees rows in real time and
 * in order. Batch 0 carries the columns; an empty result still sends batch 0 so the caller
 * learns the columns.
 */
export async function sendRowBatches(options: RowBatchSendOptions): Promise<RowsCompletion> {
  const { api, commandId, columns, progress, signal, scope } = options;
  let seq = 0;
  let rowCount = 0;
  let pending: Promise<unknown> | undefined;
  let sendError: { error: unknown } | undefined;

  const send = async (rows: RowValue[][]) => {
    const batch = { seq, rows: toJsonRows(columns, rows), ...(seq === 0 ? { columns: [...columns] } : {}) };
    seq++;
    if (pending) await pending;
    if (sendError) throw sendError.error;
    // Caught at once so a failure while the next batch is read is never an unhandled rejection.
    pending = api.rows(commandId, batch, signal, scope).catch((error: unknown) => {
      sendError = { error };
    });
  };

  progress.stage = 'uploading';
  for await (const rows of options.batches) {
    await send(rows);
    rowCount += rows.length;
    progress.rows = rowCount;
  }
  if (seq === 0) await send([]);
  await pending;
  if (sendError) throw sendError.error;
  return { kind: 'rows', rowCount, batchCount: seq };
}
