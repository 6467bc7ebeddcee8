import type { Logger } from '@backhaul/core';
import {
  BackhaulError,
  type Hello,
  helloSchema,
  PROTOCOL_VERSION,
  parseJson,
  parseMessage,
  sleep,
} from '@backhaul/core';
import { createParser } from 'eventsource-parser';
import { request } from 'undici';
import { describeError, problemFromResponse, type ServerApi } from './server-api.js';

export interface CommandStreamHandlers {
  onHello(hello: Hello): void;
  /** The raw `data` of a `command` event and its `id:`; validation is the runner's job. */
  onCommand(data: string, eventId: string | undefined): void;
  /** The raw `data` of a `cancel` event (§4.3); validation is the runner's job. */
  onCancel?(data: string): void;
  /** A stream that had said hello ended; the client reconnects by itself. */
  onDisconnected(error: unknown): void;
  /**
   * Retrying cannot help, so the client stops: the server refused our credential (401/403), or
   * its hello speaks a protocol version this gateway does not.
   */
  onFatal(error: BackhaulError): void;
}

/** Twice the largest query a server accepts (4 MiB of JSON): room for any honest command. */
export const DEFAULT_MAX_EVENT_LENGTH = 8 * 1024 * 1024;

export interface CommandStreamOptions {
  api: ServerApi;
  heartbeatTimeoutMs: number;
  /**
   * Most characters one event may take (its data, and a line still waiting for its end): past
   * it the stream is dropped and reconnected, so a broken or hostile server cannot make the
   * gateway buffer without bound.
   */
  maxEventLength?: number;
  reconnect: { baseDelayMs: number; maxDelayMs: number };
  logger: Logger;
  handlers: CommandStreamHandlers;
  random?: () => number;
}

/**
 * The command stream of docs/protocol.md §4 over undici and eventsource-parser. It holds one
 * long GET open, watches it with its own dead-stream timer (undici's bodyTimeout is off: a quiet
 * SSE body is normal), and reconnects with jittered exponential backoff, sending `Last-Event-ID`.
 */
export class CommandStreamClient {
  readonly #options: CommandStreamOptions;
  readonly #stopped = new AbortController();
  #current: AbortController | undefined;
  #lastEventId: string | undefined;
  #serverRetryMs: number | undefined;
  /** Set when the server said something that retrying cannot fix; the loop stops on it. */
  #fatal: BackhaulError | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: CommandStreamOptions) {
    this.#options = options;
  }

  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped.abort(new Error('gateway stopped'));
    this.#current?.abort(new Error('gateway stopped'));
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { logger, handlers } = this.#options;
    let failures = 0;
    while (!this.#stopped.signal.aborted) {
      let helloSeen = false;
      let cause: unknown;
      try {
        await this.#connectOnce(() => {
          helloSeen = true;
          // A stream that said hello is healthy: the next outage starts the backoff afresh.
          failures = 0;
        });
        cause = new Error('the server closed the command stream');
      } catch (error) {
        cause = error;
      }
      if (this.#stopped.signal.aborted) break;
      if (BackhaulError.isInstance(cause) && (cause.status === 401 || cause.status === 403)) {
        logger.error('the server refused the gateway token; not reconnecting', {
          code: cause.code,
          error: describeError(cause),
        });
        handlers.onFatal(cause);
        return;
      }
      if (this.#fatal) {
        logger.error('the server speaks another protocol; not reconnecting', {
          code: this.#fatal.code,
          error: describeError(this.#fatal),
        });
        handlers.onFatal(this.#fatal);
        return;
      }
      if (helloSeen) handlers.onDisconnected(cause);
      failures++;
      // §2: a 429 or 503 with Retry-After is not retried before it, whatever the backoff says.
      const retryAfterMs = BackhaulError.isInstance(cause) ? (cause.retryAfterMs ?? 0) : 0;
      const delayMs = Math.max(this.#reconnectDelay(failures), retryAfterMs);
      logger.warn('command stream lost, reconnecting', {
        error: describeError(cause),
        delayMs,
        attempt: failures,
      });
      await sleep(delayMs, this.#stopped.signal).catch(() => {});
    }
  }

  /** §4: server's `retry:` is the base of the backoff when given; equal jitter keeps gateways apart. */
  #reconnectDelay(failures: number): number {
    const { baseDelayMs, maxDelayMs } = this.#options.reconnect;
    const base = this.#serverRetryMs ?? baseDelayMs;
    const ceiling = Math.min(maxDelayMs, base * 2 ** Math.max(0, failures - 1));
    const random = this.#options.random ?? Math.random;
    return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
  }

  async #connectOnce(onHealthy: () => void): Promise<void> {
    const { api, heartbeatTimeoutMs, handlers, logger } = this.#options;
    const maxEventLength = this.#options.maxEventLength ?? DEFAULT_MAX_EVENT_LENGTH;
    const controller = new AbortController();
    this.#current = controller;
    if (this.#stopped.signal.aborted) return;

    // §4: 45 s without a byte (heartbeat or event) is a dead stream, even if the socket looks open.
    const deadStream = setTimeout(() => {
      controller.abort(
        new BackhaulError('timeout', `no bytes on the command stream for ${heartbeatTimeoutMs} ms`),
      );
    }, heartbeatTimeoutMs);
    deadStream.unref?.();
    try {
      const headers: Record<string, string> = {
        accept: 'text/event-stream',
        authorization: api.authorization,
        'cache-control': 'no-cache',
      };
      if (this.#lastEventId !== undefined) headers['last-event-id'] = this.#lastEventId;
      const response = await request(api.url('/v1/gateway/commands'), {
        method: 'GET',
        headers,
        signal: controller.signal,
        dispatcher: api.dispatcher,
        bodyTimeout: 0,
        headersTimeout: Math.max(heartbeatTimeoutMs, 30_000),
      });
      if (response.statusCode !== 200) throw await problemFromResponse(response);
      const contentType = String(response.headers['content-type'] ?? '');
      if (!contentType.startsWith('text/event-stream')) {
        await response.body.dump();
        throw new BackhaulError(
          'bad-request',
          `the command stream answered with content-type '${contentType}'`,
        );
      }

      // A server that breaks the protocol on this connection is not listened to any further,
      // not even for the rest of the bytes already received: nothing it sent after runs.
      const dropConnection = (error: BackhaulError, message: string) => {
        if (controller.signal.aborted) return;
        logger.error(message, { code: error.code, error: describeError(error) });
        controller.abort(error);
      };
      let helloSeen = false;
      const parser = createParser({
        maxBufferSize: maxEventLength,
        onRetry: (ms) => {
          this.#serverRetryMs = ms;
        },
        onEvent: (event) => {
          if (controller.signal.aborted) return;
          if (event.event === 'hello') {
            try {
              const hello = this.#readHello(event.data);
              helloSeen = true;
              onHealthy();
              handlers.onHello(hello);
            } catch (error) {
              const problem = BackhaulError.isInstance(error)
                ? error
                : new BackhaulError('invalid-message', `invalid hello: ${String(error)}`);
              dropConnection(problem, 'invalid hello on the command stream');
            }
          } else if (event.event === 'command') {
            // §4: "The server MUST first send retry: and a hello event"; a command before it
            // comes from something that is not speaking this protocol, so none of it is run.
            if (!helloSeen) {
              dropConnection(
                new BackhaulError('invalid-message', 'a command arrived before the hello'),
                'protocol violation on the command stream',
              );
              return;
            }
            // §4.2 Last-Event-ID names the last *command* seen, so only command ids move it.
            if (event.id) this.#lastEventId = event.id;
            handlers.onCommand(event.data, event.id);
          } else if (event.event === 'cancel') {
            // Only a stream that said hello speaks for the server; a cancel before it is ignored.
            if (helloSeen) handlers.onCancel?.(event.data);
          } else {
            // A newer server may add event types: skipped and logged, the stream stays up.
            const error = new BackhaulError(
              'invalid-message',
              `unknown event type '${(event.event ?? 'message').slice(0, 64)}' skipped`,
            );
            logger.warn('unknown event on the command stream', {
              code: error.code,
              error: describeError(error),
            });
          }
        },
        onError: (error) => {
          if (error.type === 'max-buffer-size-exceeded') {
            dropConnection(
              new BackhaulError(
                'payload-too-large',
                `an event on the command stream exceeds ${maxEventLength} characters`,
              ),
              'oversized event on the command stream',
            );
            return;
          }
          logger.warn('malformed line on the command stream', {
            code: 'invalid-message',
            error: error.message,
          });
        },
      });
      const decoder = new TextDecoder();
      for await (const bytes of response.body) {
        deadStream.refresh();
        parser.feed(decoder.decode(bytes as Uint8Array, { stream: true }));
        if (controller.signal.aborted) break;
      }
      // Dropped for a protocol violation: the loop logs and backs off on the reason, not on "closed".
      if (controller.signal.aborted) throw controller.signal.reason;
    } catch (error) {
      // An abort carries its reason (dead stream or stop); surface that rather than "aborted".
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      clearTimeout(deadStream);
    }
  }

  /**
   * §4.1 The hello. A version other than ours is fatal (this gateway cannot speak to that server,
   * however often it retries); any other malformed hello drops the connection and retries.
   */
  #readHello(data: string): Hello {
    const json = parseJson(data, 'hello');
    const version = (json as { v?: unknown } | null)?.v;
    if (typeof version === 'number' && version !== PROTOCOL_VERSION) {
      this.#fatal = new BackhaulError(
        'invalid-message',
        `the server speaks protocol version ${version}; this gateway speaks version ${PROTOCOL_VERSION}: upgrade the gateway`,
        { details: { serverVersion: version, gatewayVersion: PROTOCOL_VERSION } },
      );
      throw this.#fatal;
    }
    return parseMessage(helloSchema, json, 'hello');
  }
}
