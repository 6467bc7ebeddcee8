import type { Column, Completion, RowValue } from '@backhaul/core';
import type { FileBatch } from './parquet-encoding.js';
import type { ProgressState } from './progress.js';
import { sendRowBatches } from './row-batch-sender.js';
import { toJsonRows } from './row-values.js';
import type { AnswerScope, ServerApi } from './server-api.js';

type FileCompletion = Extract<Completion, { kind: 'file' }>;

export interface AutoResultOptions {
  api: ServerApi;
  commandId: string;
  columns: readonly Column[];
  batches: AsyncIterable<RowValue[][]>;
  /** The command's `rowsByteLimit`: the most bytes of row batches sent live. */
  rowsByteLimit: number;
  progress: ProgressState;
  signal: AbortSignal;
  /** The command's trace and logger, carried on every answer. */
  scope?: AnswerScope;
  /** Uploads a file of these batches (the file flow of §6); called once, at the switch. */
  uploadFile: (batches: AsyncIterable<FileBatch>) => Promise<FileCompletion>;
  /** Told when the result switches to a file, with the rows already sent live. */
  onSwitch?: (liveRows: number) => void;
}

/**
 * Auto mode (docs/protocol.md §3.9). Row batches go to the server as they come off the cursor,
 * exactly as in rows mode, so callers see the head of any result at once. Each batch is weighed
 * (its JSON, in UTF-8 bytes, as the server counts it) before it is sent; the first batch that
 * would take the batches sent past `rowsByteLimit` is not sent, and the result becomes a file
 * holding every row: the batches already sent first, then that batch, then the rest of the cursor.
 *
 * The batches sent are kept for that file, so they are bounded by `rowsByteLimit` as before; the
 * file is always the whole result, so a caller that only downloads it needs nothing else, and a
 * caller that followed the rows knows from `liveRows` which of the file's rows it has seen.
 * Every batch sent is answered by the server before the first chunk goes out: the server takes
 * the first chunk as the switch and counts the rows it holds then.
 */
export async function sendAutoResult(options: AutoResultOptions): Promise<Completion> {
  const { columns, rowsByteLimit } = options;
  const iterator = options.batches[Symbol.asyncIterator]();
  const sent: RowValue[][][] = [];
  let sentBytes = 0;
  let liveRows = 0;
  // The batch that did not fit, once one is read: set inside the generator below.
  const over: { batch?: RowValue[][] } = {};

  async function* withinLimit(): AsyncGenerator<RowValue[][]> {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      const bytes = Buffer.byteLength(JSON.stringify(toJsonRows(columns, next.value)));
      if (sentBytes + bytes > rowsByteLimit) {
        over.batch = next.value;
        return;
      }
      sentBytes += bytes;
      liveRows += next.value.length;
      sent.push(next.value);
      yield next.value;
    }
  }

  // Rows mode's sender, stopped at the limit. It waits for every batch's answer before it returns,
  // and sends batch 0 (the columns) even when the first batch already crosses the limit.
  const rows = await sendRowBatches({ ...options, batches: withinLimit() });
  const crossing = over.batch;
  if (crossing === undefined) return rows;
  const firstUnsent: RowValue[][] = crossing;

  options.onSwitch?.(liveRows);
  async function* wholeResult(): AsyncGenerator<RowValue[][]> {
    // Handed over one by one, so the encoder frees each kept batch as it writes it.
    while (sent.length > 0) yield sent.shift()!;
    yield firstUnsent;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  options.progress.rows = 0;
  return options.uploadFile(wholeResult());
}
