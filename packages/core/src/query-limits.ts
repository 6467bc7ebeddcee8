import type { QueryRequest } from './data-source.js';
import { BackhaulError } from './errors.js';

/**
 * The bookkeeping every SQL `DataSource` does around a query, whatever its driver: which limits a
 * request runs under, and when the caller's signal or the request's deadline interrupts it.
 */

/** The limits one query runs under. */
export interface QueryLimits {
  /** The statement timeout on the server, in ms: the request's `timeoutMs`, else the source's. */
  timeoutMs: number;
  /** Rows the caller may receive at most: the smaller of the request's and the source's cap (Infinity when neither). */
  maxRows: number;
}

/** A positive integer option as given, undefined when absent; anything else is a 'bad-request'. */
export function positiveIntegerOption(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) {
    throw new BackhaulError('bad-request', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/**
 * Checks a request a source received (SQL present, limits positive integers) and resolves its
 * limits against the source's own: a source's `maxRows` is a ceiling no request can raise.
 */
export function resolveQueryLimits(
  request: QueryRequest,
  source: { statementTimeoutMs: number; maxRows: number },
): QueryLimits {
  if (typeof request.sql !== 'string' || request.sql.trim() === '') {
    throw new BackhaulError('bad-request', 'The query has no SQL');
  }
  return {
    timeoutMs: positiveIntegerOption(request.timeoutMs, 'timeoutMs') ?? source.statementTimeoutMs,
    maxRows: Math.min(
      positiveIntegerOption(request.maxRows, 'maxRows') ?? Number.POSITIVE_INFINITY,
      source.maxRows,
    ),
  };
}

/** Whether `error` is the caller's own abort reason, which a source rethrows as it is. */
export function isAbortReason(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && error === signal.reason;
}

/**
 * Calls `interrupt` once the caller aborts (with the signal's reason) or the whole-query deadline
 * passes (with a 'timeout' error). Returns the function that stops watching; call it when the
 * query ends, so neither fires later.
 */
export function watchQueryInterruptions(
  watched: { signal: AbortSignal | undefined; deadlineMs: number | undefined },
  interrupt: (reason: unknown) => void,
): () => void {
  const { signal, deadlineMs } = watched;
  const onAbort = () => interrupt(signal?.reason ?? new Error('The query was aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  const deadline =
    deadlineMs === undefined
      ? undefined
      : setTimeout(
          () =>
            interrupt(new BackhaulError('timeout', `The query ran longer than its ${deadlineMs} ms limit`)),
          deadlineMs,
        );
  return () => {
    if (deadline) clearTimeout(deadline);
    signal?.removeEventListener('abort', onAbort);
  };
}

/** A `batches(batchSize)` argument must be a positive integer; anything else is a 'bad-request'. */
export function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new BackhaulError('bad-request', `batchSize must be a positive integer, got ${batchSize}`);
  }
}
