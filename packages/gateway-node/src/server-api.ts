import type { Logger } from '@backhaul/core';
import {
  BackhaulError,
  type ChunkReceipt,
  type Completion,
  chunkReceiptSchema,
  type Failure,
  fromProblem,
  type Progress,
  parseMessage,
  parseRetryAfter,
  type RetryPolicy,
  type RowBatch,
  type TraceContext,
  traceHeaders,
  withRetry,
} from '@backhaul/core';
import { Agent, type Dispatcher, request } from 'undici';

/**
 * One keep-alive pool per server: enough connections for the chunk window, the command stream and
 * the small POSTs, so connections stay warm between chunks and files (no new handshakes).
 */
export function createConnectionPool(chunksInFlight: number): Agent {
  return new Agent({ connections: chunksInFlight + 4, pipelining: 1, keepAliveTimeout: 30_000 });
}

export interface ServerApiOptions {
  serverUrl: string;
  token: string;
  dispatcher: Dispatcher;
  retry: RetryPolicy;
  logger: Logger;
}

/**
 * What an answer belongs to beyond its command ID: the gateway's span it is sent from (its
 * `traceparent`, docs/protocol.md §5) and the logger whose lines name the command.
 */
export interface AnswerScope {
  trace?: TraceContext | undefined;
  logger?: Logger | undefined;
}

export interface ChunkUpload {
  index: number;
  body: Uint8Array;
  codec: string;
  checksum: string;
  rawLength: number;
}

/**
 * The gateway's side of docs/protocol.md §5: small typed calls over one keep-alive dispatcher.
 * Every non-2xx answer becomes a `BackhaulError` rebuilt from its problem+json body (§2), so
 * `withRetry` decides on the server's own `retryable` flag and waits at least its Retry-After.
 */
export class ServerApi {
  readonly #base: string;
  readonly #authorization: string;
  readonly #dispatcher: Dispatcher;
  readonly #retry: RetryPolicy;
  readonly #logger: Logger;

  constructor(options: ServerApiOptions) {
    const url = new URL(options.serverUrl);
    this.#base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    this.#authorization = `Bearer ${options.token}`;
    this.#dispatcher = options.dispatcher;
    this.#retry = options.retry;
    this.#logger = options.logger;
  }

  get dispatcher(): Dispatcher {
    return this.#dispatcher;
  }

  get authorization(): string {
    return this.#authorization;
  }

  url(path: string): string {
    return `${this.#base}${path}`;
  }

  /** §5.1 Idempotent on the server, so a duplicate delivery is simply acked again. */
  ack(commandId: string, signal?: AbortSignal, scope?: AnswerScope): Promise<unknown> {
    return this.#withRetry(
      `ack ${commandId}`,
      () => this.#send('POST', commandPath(commandId, 'ack'), { signal, trace: scope?.trace }),
      signal,
      scope,
    );
  }

  /** §5.2 Not retried: the next tick sends a fresher one anyway. */
  progress(
    commandId: string,
    progress: Progress,
    signal?: AbortSignal,
    scope?: AnswerScope,
  ): Promise<unknown> {
    return this.#send('POST', commandPath(commandId, 'progress'), {
      json: progress,
      signal,
      trace: scope?.trace,
    });
  }

  /** §5.3 The same seq twice is accepted and ignored, so a retry after a lost answer is safe. */
  rows(commandId: string, batch: RowBatch, signal?: AbortSignal, scope?: AnswerScope): Promise<unknown> {
    const body = JSON.stringify(batch);
    return this.#withRetry(
      `rows ${commandId}#${batch.seq}`,
      () =>
        this.#send('POST', commandPath(commandId, 'rows'), {
          body,
          contentType: 'application/json',
          signal,
          trace: scope?.trace,
        }),
      signal,
      scope,
    );
  }

  /** §5.4 One attempt; the uploader owns the retry loop so it can count and log per chunk. */
  async putChunk(
    commandId: string,
    chunk: ChunkUpload,
    signal?: AbortSignal,
    trace?: TraceContext,
  ): Promise<number> {
    const { status } = await this.#send('PUT', commandPath(commandId, `chunks/${chunk.index}`), {
      body: chunk.body,
      contentType: 'application/octet-stream',
      headers: {
        'backhaul-codec': chunk.codec,
        'backhaul-checksum': chunk.checksum,
        'backhaul-raw-length': String(chunk.rawLength),
      },
      signal,
      trace,
    });
    return status;
  }

  /** §6.3 What the server already holds of this command's file. */
  async chunkReceipt(commandId: string, signal?: AbortSignal, trace?: TraceContext): Promise<ChunkReceipt> {
    const { json } = await this.#send('GET', commandPath(commandId, 'chunks'), {
      signal,
      readJson: true,
      trace,
    });
    return parseMessage(chunkReceiptSchema, json, 'chunk receipt');
  }

  complete(
    commandId: string,
    completion: Completion,
    signal?: AbortSignal,
    scope?: AnswerScope,
  ): Promise<unknown> {
    return this.#withRetry(
      `complete ${commandId}`,
      async () =>
        (
          await this.#send('POST', commandPath(commandId, 'complete'), {
            json: completion,
            signal,
            readJson: true,
            trace: scope?.trace,
          })
        ).json,
      signal,
      scope,
    );
  }

  fail(commandId: string, failure: Failure, signal?: AbortSignal, scope?: AnswerScope): Promise<unknown> {
    return this.#withRetry(
      `fail ${commandId}`,
      () =>
        this.#send('POST', commandPath(commandId, 'fail'), { json: failure, signal, trace: scope?.trace }),
      signal,
      scope,
    );
  }

  #withRetry<T>(
    what: string,
    operation: () => Promise<T>,
    signal?: AbortSignal,
    scope?: AnswerScope,
  ): Promise<T> {
    const logger = scope?.logger ?? this.#logger;
    return withRetry(this.#retry, operation, {
      signal,
      onRetry: (error, attempt, delayMs) =>
        logger.warn(`${what} failed, retrying`, { attempt, delayMs, error: describeError(error) }),
    });
  }

  async #send(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    options: {
      json?: unknown;
      body?: string | Uint8Array;
      contentType?: string;
      headers?: Record<string, string>;
      signal?: AbortSignal | undefined;
      readJson?: boolean;
      /** The gateway's span this request is sent from: its `traceparent` (§5). */
      trace?: TraceContext | undefined;
    },
  ): Promise<{ status: number; json?: unknown }> {
    const headers: Record<string, string> = {
      authorization: this.#authorization,
      ...traceHeaders(options.trace),
      ...options.headers,
    };
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    } else if (options.contentType) {
      headers['content-type'] = options.contentType;
    }
    const response = await request(this.url(path), {
      method,
      headers,
      body,
      signal: options.signal,
      dispatcher: this.#dispatcher,
    });
    if (response.statusCode >= 200 && response.statusCode < 300) {
      // Every body is consumed so the keep-alive connection goes back to the pool at once.
      if (options.readJson && response.statusCode !== 204) {
        const text = await response.body.text();
        return { status: response.statusCode, json: text ? JSON.parse(text) : undefined };
      }
      await response.body.dump();
      return { status: response.statusCode };
    }
    throw await problemFromResponse(response);
  }
}

/** Turns a non-2xx undici response into the typed error its problem+json body describes (§2). */
export async function problemFromResponse(response: Dispatcher.ResponseData): Promise<BackhaulError> {
  let problem: unknown;
  try {
    const text = await response.body.text();
    problem = text ? JSON.parse(text) : undefined;
  } catch {
    problem = undefined;
  }
  const retryAfterHeader = response.headers['retry-after'];
  const retryAfter = parseRetryAfter(
    Array.isArray(retryAfterHeader) ? retryAfterHeader[0] : retryAfterHeader,
  );
  return fromProblem(response.statusCode, problem, retryAfter);
}

function commandPath(commandId: string, rest: string): string {
  return `/v1/gateway/commands/${encodeURIComponent(commandId)}/${rest}`;
}

export function describeError(error: unknown): string {
  if (BackhaulError.isInstance(error)) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
