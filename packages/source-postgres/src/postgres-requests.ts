import { watchQueryInterruptions } from '@backhaul/core';
import type pg from 'pg';
import { sendCancelRequest } from './postgres-cancel.js';
import { toBackhaulError } from './postgres-errors.js';

/**
 * What both PostgreSQL cursors do around each request they send: cut it short with a cancel request
 * when the caller aborts, closes or the deadline passes; say why when it then fails (PostgreSQL
 * itself only says 57014); and let the cursor's end wait for it. At most one runs at a time.
 */
export class CancellableRequests {
  #interruption: unknown;
  #inFlight: Promise<unknown> | undefined;
  /** The cancel request sent, until the server has acted on it (see sendCancelRequest). */
  #cancelling: Promise<void> | undefined;
  readonly #stopWatching: () => void;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly limits: {
      signal: AbortSignal | undefined;
      deadlineMs: number | undefined;
      /** For the error message of a statement_timeout. */
      statementTimeoutMs: number;
    },
  ) {
    this.#stopWatching = watchQueryInterruptions(limits, (reason) => this.interrupt(reason));
  }

  get interrupted(): boolean {
    return this.#interruption !== undefined;
  }

  interrupt(reason: unknown): void {
    this.#interruption ??= reason;
    // The backend is busy computing rows for us: only a cancel request reaches it now.
    if (this.#inFlight) this.#cancelling ??= sendCancelRequest(this.client);
  }

  throwIfInterrupted(): void {
    if (this.#interruption !== undefined) throw this.#interruption;
  }

  /** Sends a request (`start` is called only if nothing interrupted the cursor yet) and awaits it. */
  async run<T>(start: () => Promise<T>): Promise<T> {
    this.throwIfInterrupted();
    const pending = start();
    this.#inFlight = pending.catch(() => undefined);
    try {
      return await pending;
    } catch (error) {
      // A cancel we sent surfaces as PostgreSQL's 57014: report why we sent it instead.
      this.throwIfInterrupted();
      throw toBackhaulError(error, { timeoutMs: this.limits.statementTimeoutMs });
    } finally {
      this.#inFlight = undefined;
    }
  }

  /**
   * Stops watching for interruptions and waits until the running request, if any, settled, and a
   * cancel request, if one was sent, reached the backend: only then may the connection be reused.
   */
  async settle(): Promise<void> {
    this.#stopWatching();
    await this.#inFlight;
    await this.#cancelling;
  }
}

/**
 * The end of every query: `closePortal` (what the cursor still has open on the connection, if any), then
 * ROLLBACK — the transaction is read-only, there is nothing to commit — and the connection back to
 * the pool. A connection that failed, or in an unknown state, is destroyed rather than handed to
 * the next query.
 */
export async function rollbackAndRelease(
  client: pg.PoolClient,
  failure: Error | undefined,
  closePortal?: () => Promise<void>,
): Promise<void> {
  if (!failure) {
    try {
      await closePortal?.();
      await client.query('ROLLBACK');
    } catch (error) {
      failure = error as Error;
    }
  }
  client.release(failure);
}
