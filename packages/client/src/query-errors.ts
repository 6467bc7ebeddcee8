import { BackhaulError } from '@backhaul/core';

/**
 * The query ended `cancelled` on the server (docs/protocol.md §3.8): by this caller's
 * `cancel(id)`, an aborted `run`, or anyone else holding a caller token. It has no result.
 * A `BackhaulError` with code `cancelled` (409), as the result endpoint answers it.
 */
export class QueryCancelledError extends BackhaulError {
  readonly queryId: string;

  constructor(queryId: string, message = `Query ${queryId} was cancelled: it has no result`) {
    super('cancelled', message, { details: { queryState: 'cancelled' } });
    this.name = 'QueryCancelledError';
    this.queryId = queryId;
  }
}

/**
 * The caller's own `AbortSignal` ended a wait (`follow`, `waitFor`, `rows`, `run`). Its `name` is
 * `'AbortError'`, as for an aborted `fetch`, and `cause` is the signal's reason. `cancelled` says
 * whether the query was also cancelled on the server: `run` does that; the other methods only stop
 * waiting and leave the query running.
 */
export class QueryAbortedError extends Error {
  readonly queryId: string | undefined;
  readonly cancelled: boolean;

  constructor(queryId: string | undefined, cancelled: boolean, cause: unknown) {
    super(
      queryId === undefined
        ? 'Aborted before the query was created'
        : `Stopped waiting for query ${queryId}${cancelled ? '; it was cancelled on the server' : ''}`,
      { cause },
    );
    this.name = 'AbortError';
    this.queryId = queryId;
    this.cancelled = cancelled;
  }
}

/** An error from an aborted signal, as fetch and the stream readers raise it, typed for callers. */
export function abortedBy(signal: AbortSignal | undefined, error: unknown): boolean {
  return signal?.aborted === true && (error === signal.reason || (error as Error)?.name === 'AbortError');
}
