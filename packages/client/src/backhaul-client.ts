import {
  activeTrace,
  BackhaulError,
  backoffDelay,
  type Column,
  type GatewayView,
  type Progress,
  type QueryView,
  type RetryPolicy,
  type SubmitQuery,
  sleep,
  sseEvents,
  terminalStates,
  traceHeaders,
  withRetry,
} from '@backhaul/core';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { abortedBy, QueryAbortedError, QueryCancelledError } from './query-errors.js';
import { type ServerConnectionOptions, serverRequests } from './server-requests.js';

/** `token` is a caller token configured on the server. */
export interface BackhaulClientOptions extends ServerConnectionOptions {
  /**
   * How `submit` retries a request that failed on the network or with 503; each retry carries
   * the same `Idempotency-Key`, so it never creates a second query. Default: 5 tries, backoff
   * from 200 ms up to 5 s with jitter, a `Retry-After` waited out as given.
   */
  submitRetry?: Partial<RetryPolicy>;
}

export interface SubmitOptions {
  /**
   * The `Idempotency-Key` (docs/protocol.md §3.1): up to 255 visible ASCII characters other than
   * `"`, `\` and `,`. A submit repeated with the same key and query, e.g. after a crash of the
   * caller itself, returns the query the first one created. Default: a new random UUID per call.
   */
  idempotencyKey?: string;
  /**
   * The W3C `traceparent` (and `tracestate`) of the caller's span (docs/protocol.md §3.1): the
   * query becomes part of that trace. Default: the span active in the OpenTelemetry context, when
   * the caller registered an SDK with a context manager; else none, and the query starts a trace.
   */
  traceparent?: string;
  tracestate?: string;
  signal?: AbortSignal;
}

export const defaultSubmitRetry: RetryPolicy = { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 5000 };

/**
 * Worth a retry of a submit under the same key: a network failure (the request may or may not
 * have reached the server), 503, or a load balancer's 502/504 (the instance behind it went away
 * mid-request: a drain or a crash). The idempotency key makes a resend that did arrive harmless.
 * A 429 is not: the caller chose `whenBusy` and sees the refusal.
 */
function isSubmitRetryable(error: unknown): boolean {
  if (BackhaulError.isInstance(error)) return [502, 503, 504].includes(error.status);
  return !(error instanceof Error && error.name === 'AbortError');
}

/** What a caller sees while following a query (docs/protocol.md §3.3). */
export type QueryEvent =
  | { type: 'state'; query: QueryView }
  | { type: 'rows'; seq: number; columns?: Column[]; rows: unknown[][] }
  | { type: 'progress'; progress: Progress }
  /**
   * An `auto` query passed `rowsByteLimit` (§3.9): no `rows` event follows, and the result will be
   * a file of every row whose first `query.liveRows` rows are the ones the `rows` events carried.
   */
  | { type: 'switched'; query: QueryView }
  /** The query was cancelled (§3.8); the `result` event follows. */
  | { type: 'cancelled'; query: QueryView }
  | { type: 'result'; query: QueryView };

export interface RowsResult {
  columns: Column[];
  rows: unknown[][];
}

export interface RunOptions extends SubmitOptions {
  /** Every event while the query runs, as `follow` gives them. */
  onEvent?: (event: QueryEvent) => void;
}

/**
 * What `run` resolves with: the final view, and the rows when the result is rows. In `auto` mode the
 * rows also come through `onEvent` as they arrive; a result that became a file (a `switched` event)
 * is in `query.result`, and `query.liveRows` says how many of its first rows came through `onEvent`.
 */
export interface RunResult {
  query: QueryView;
  /** Present for a rows result; a file result is in `query.result` (its URL, size, checksum). */
  rows?: RowsResult;
}

export interface BackhaulClient {
  /** `POST /v1/queries` under an idempotency key, retried on network errors, 502, 503 and 504 (§3.1). */
  submit(query: SubmitQuery, options?: SubmitOptions): Promise<QueryView>;
  get(id: string): Promise<QueryView>;
  /**
   * Live events until the query ends (`result`) or `signal` aborts, which throws
   * `QueryAbortedError` and leaves the query running. A dropped stream is resumed with
   * `Last-Event-ID` (no row batch or `switched` event twice; the current `state` is sent again).
   */
  follow(id: string, options?: { signal?: AbortSignal }): AsyncGenerator<QueryEvent>;
  /** Follows the query and resolves with its final view (whatever the state: `cancelled` too). */
  waitFor(
    id: string,
    options?: { signal?: AbortSignal; onEvent?: (event: QueryEvent) => void },
  ): Promise<QueryView>;
  /** The rows of a completed rows query; a cancelled one throws `QueryCancelledError`. */
  rows(id: string, options?: { signal?: AbortSignal }): Promise<RowsResult>;
  /**
   * `DELETE /v1/queries/{id}` (§3.8): the query ends `cancelled` and its gateway stops the
   * database statement and the upload. Resolves with the cancelled view; again on a repeat. A
   * query that already ended throws `BackhaulError` `invalid-state` (409) and keeps its result.
   */
  cancel(id: string): Promise<QueryView>;
  /**
   * Submits, follows and fetches in one call. Aborting `signal` once the query exists cancels it
   * on the server (then throws `QueryAbortedError` with `cancelled: true`); a query cancelled by
   * someone else throws `QueryCancelledError`; a failed one the result endpoint's typed error.
   */
  run(query: SubmitQuery, options?: RunOptions): Promise<RunResult>;
  gateways(): Promise<GatewayView[]>;
}

/** Tries in a row without an event before `follow` stops reconnecting. */
const FOLLOW_RECONNECTS = 5;
const followRetry: RetryPolicy = { maxAttempts: FOLLOW_RECONNECTS + 1, baseDelayMs: 250, maxDelayMs: 5000 };

function queryEvent(type: string | undefined, data: unknown): QueryEvent | undefined {
  switch (type) {
    case sseEvents.state:
      return { type: 'state', query: data as QueryView };
    case sseEvents.rows:
      return { type: 'rows', ...(data as { seq: number; columns?: Column[]; rows: unknown[][] }) };
    case sseEvents.progress:
      return { type: 'progress', progress: data as Progress };
    case sseEvents.switched:
      return { type: 'switched', query: data as QueryView };
    case sseEvents.cancelled:
      return { type: 'cancelled', query: data as QueryView };
    case sseEvents.result:
      return { type: 'result', query: data as QueryView };
    default:
      return undefined;
  }
}

export function createBackhaulClient(options: BackhaulClientOptions): BackhaulClient {
  const { call, json, postJson } = serverRequests(options);
  const submitRetry: RetryPolicy = { ...defaultSubmitRetry, ...options.submitRetry };
  const queryPath = (id: string) => `/v1/queries/${encodeURIComponent(id)}`;

  /** Runs a request under the caller's signal; an abort comes out as `QueryAbortedError`. */
  async function abortable<T>(
    id: string,
    signal: AbortSignal | undefined,
    work: () => Promise<T>,
  ): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (abortedBy(signal, error)) throw new QueryAbortedError(id, false, signal?.reason);
      throw error;
    }
  }

  async function* follow(id: string, { signal }: { signal?: AbortSignal } = {}): AsyncGenerator<QueryEvent> {
    try {
      yield* readEvents(id, signal);
    } catch (error) {
      if (abortedBy(signal, error)) throw new QueryAbortedError(id, false, signal?.reason);
      throw error;
    }
  }

  /**
   * §3.3 with a standard EventSource's reconnection: a stream that drops before `result` is
   * opened again (on whichever instance the balancer picks) with `Last-Event-ID`, so the server
   * sends the current state and only the row batches after the last one received; a batch is
   * never yielded twice. Gives up, ending the iteration, after FOLLOW_RECONNECTS tries in a row
   * that received nothing.
   */
  async function* readEvents(id: string, signal: AbortSignal | undefined): AsyncGenerator<QueryEvent> {
    let lastEventId: string | undefined;
    let failures = 0;
    // A stream resumed after an auto query's switch is told of it again (§3.9): yielded once.
    let switched = false;
    for (;;) {
      try {
        const response = await call(`${queryPath(id)}/events`, {
          headers: {
            accept: 'text/event-stream',
            ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
          },
          signal,
        });
        if (!response.body) return;
        const events = response.body
          .pipeThrough(new TextDecoderStream())
          .pipeThrough(new EventSourceParserStream());
        for await (const message of events) {
          if (message.id !== undefined) lastEventId = message.id;
          failures = 0;
          const event = queryEvent(message.event, JSON.parse(message.data));
          if (event?.type === 'switched') {
            if (switched) continue;
            switched = true;
          }
          if (event) yield event;
          if (event?.type === 'result') return;
        }
      } catch (error) {
        // A refusal (401, 404) or the caller's own abort is final; a dropped connection is not.
        if (signal?.aborted || !isSubmitRetryable(error)) throw error;
      }
      if (++failures > FOLLOW_RECONNECTS) return;
      await sleep(backoffDelay(followRetry, failures), signal);
    }
  }

  async function waitFor(
    id: string,
    { signal, onEvent }: { signal?: AbortSignal; onEvent?: (event: QueryEvent) => void } = {},
  ): Promise<QueryView> {
    for await (const event of follow(id, { signal })) {
      onEvent?.(event);
      if (event.type === 'result') return event.query;
    }
    // The stream ended without a result event (e.g. a proxy cut it): ask once more.
    const last = await abortable(id, signal, () => json<QueryView>(queryPath(id), { signal }));
    if (!terminalStates.includes(last.state)) {
      throw new BackhaulError('service-unavailable', `The event stream of query ${id} ended early`);
    }
    return last;
  }

  async function rows(id: string, { signal }: { signal?: AbortSignal } = {}): Promise<RowsResult> {
    try {
      return await abortable(id, signal, () => json<RowsResult>(`${queryPath(id)}/result`, { signal }));
    } catch (error) {
      if (BackhaulError.isInstance(error) && error.code === 'cancelled') {
        throw new QueryCancelledError(id, error.message);
      }
      throw error;
    }
  }

  const cancel = (id: string) => json<QueryView>(queryPath(id), { method: 'DELETE' });

  function submit(
    query: SubmitQuery,
    { idempotencyKey = globalThis.crypto.randomUUID(), traceparent, tracestate, signal }: SubmitOptions = {},
  ) {
    const trace = traceparent
      ? { traceparent, ...(tracestate ? { tracestate } : {}) }
      : traceHeaders(activeTrace());
    // The draft's structured-field form: a quoted string (the key's characters need no escape).
    const headers = { 'idempotency-key': `"${idempotencyKey}"`, ...trace };
    return withRetry(submitRetry, () => postJson<QueryView>('/v1/queries', query, { headers, signal }), {
      signal,
      isRetryable: isSubmitRetryable,
      waitOutThrottling: false,
    });
  }

  return {
    submit,
    get: (id) => json<QueryView>(queryPath(id)),
    follow,
    waitFor,
    rows,
    cancel,
    async run(query, { onEvent, ...submitOptions } = {}) {
      const { signal } = submitOptions;
      let submitted: QueryView;
      try {
        submitted = await submit(query, submitOptions);
      } catch (error) {
        if (abortedBy(signal, error)) throw new QueryAbortedError(undefined, false, signal?.reason);
        throw error;
      }
      const id = submitted.id;
      let final: QueryView;
      try {
        signal?.throwIfAborted();
        final = await waitFor(id, { signal, onEvent });
      } catch (error) {
        if (!signal?.aborted) throw error;
        // The caller gave up on the query: it must not go on using the database and the link.
        await cancel(id).catch(() => undefined);
        throw new QueryAbortedError(id, true, signal.reason);
      }
      if (final.state === 'cancelled') throw new QueryCancelledError(id);
      if (final.result?.kind === 'file') return { query: final };
      // A rows result, or the typed problem of a query that ended without one (§3.4).
      return { query: final, rows: await rows(id, { signal }) };
    },
    gateways: async () => (await json<{ gateways: GatewayView[] }>('/v1/gateways')).gateways,
  };
}
