import type { Logger } from '@backhaul/core';
import { BackhaulError, type Hello, helloSchema, parseJson, parseMessage, sleep } from '@backhaul/core';
import { createParser } from 'eventsource-parser';
import { request } from 'undici';
import { describeError, problemFromResponse, type ServerApi } from './server-api.js';

export interface CommandStreamHandlers {
  onHello(hello: Hello): void;
  /** The raw `data` of a `command` event and its `id:`; validation is the runner's job. */
  onCommand(data: string, eventId: string | undefined): void;
  /** A stream that had said hello ended; the client reconnects by itself. */
  onDisconnected(error: unknown): void;
  /** The server refused our credential (401/403): retrying cannot help, so the client stops. */
  onFatal(error: BackhaulError): void;
}

export interface CommandStreamOptions {
  api: ServerApi;
  heartbeatTimeoutMs: number;
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
          error: describeError(cause),
        });
        handlers.onFatal(cause);
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

      const parser = createParser({
        onRetry: (ms) => {
          this.#serverRetryMs = ms;
        },
        onEvent: (event) => {
          if (event.event === 'hello') {
            try {
              const hello = parseMessage(helloSchema, parseJson(event.data, 'hello'), 'hello');
              onHealthy();
              handlers.onHello(hello);
            } catch (error) {
              logger.error('invalid hello on the command stream', { error: describeError(error) });
              controller.abort(error);
            }
          } else if (event.event === 'command') {
            // §4.2 Last-Event-ID names the last *command* seen, so only command ids move it.
            if (event.id) this.#lastEventId = event.id;
            handlers.onCommand(event.data, event.id);
          }
        },
        onError: (error) => logger.warn('malformed line on the command stream', { error: error.message }),
      });
      const decoder = new TextDecoder();
      for await (const bytes of response.body) {
        deadStream.refresh();
        parser.feed(decoder.decode(bytes as Uint8Array, { stream: true }));
      }
    } catch (error) {
      // An abort carries its reason (dead stream or stop); surface that rather than "aborted".
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      clearTimeout(deadStream);
    }
  }
}
