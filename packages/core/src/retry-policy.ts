import { BackhaulError } from './errors.js';

/**
 * Exponential backoff with full jitter: attempt n waits a random time in
 * [0, min(maxDelayMs, baseDelayMs * 2^(n-1))], unless the peer said when to come back.
 */
export interface RetryPolicy {
  /** Total tries including the first; the design allows at most 10 per chunk. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 10_000 };

/** The wait before the try after `attempt` failed tries (attempt >= 1). */
export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  // A server's Retry-After is a floor it chose knowingly; jitter would only send us back early, and
  // so would a cap: "clients MUST NOT retry before it" (docs/protocol.md §2).
  if (retryAfterMs !== undefined && retryAfterMs >= 0) return retryAfterMs;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export interface RetryOptions {
  signal?: AbortSignal;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Defaults to `BackhaulError#retryable`, and true for network errors that are not ours. */
  isRetryable?: (error: unknown) => boolean;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * Whether a throttled answer (`isThrottled`) is waited out without using up a try; default
   * true. False hands it to `isRetryable` like any other error, e.g. for a caller that must see
   * the 429 it asked for.
   */
  waitOutThrottling?: boolean;
}

export function isRetryableError(error: unknown): boolean {
  if (BackhaulError.isInstance(error)) return error.retryable;
  if (error instanceof Error && error.name === 'AbortError') return false;
  // Sockets reset, refused or timed out: the request may be sent again, chunk PUTs are idempotent.
  return true;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A 429 with `Retry-After`: the server is fine and the request was not tried, it only has no slot
 * free yet (docs/protocol.md §3.7). Such an answer says nothing about the request itself.
 */
export function isThrottled(error: unknown): boolean {
  return (
    BackhaulError.isInstance(error) &&
    error.status === 429 &&
    error.retryable &&
    error.retryAfterMs !== undefined
  );
}

/**
 * Runs `operation` until it succeeds, fails with a non-retryable error, or tries run out. A
 * throttled answer (`isThrottled`) waits its Retry-After and does not use up a try: a busy server
 * must not turn into a failed upload. What bounds that wait is the signal, and on the server the
 * command's own deadline, after which the request is refused for good.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const retryable = options.isRetryable ?? isRetryableError;
  const wait = options.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if ((options.waitOutThrottling ?? true) && isThrottled(error)) {
        const delay = (error as BackhaulError).retryAfterMs as number;
        options.onRetry?.(error, attempt, delay);
        await wait(delay, options.signal);
        attempt--;
        continue;
      }
      if (attempt >= policy.maxAttempts || !retryable(error)) throw error;
      const retryAfter = BackhaulError.isInstance(error) ? error.retryAfterMs : undefined;
      const delay = backoffDelay(policy, attempt, retryAfter);
      options.onRetry?.(error, attempt, delay);
      await wait(delay, options.signal);
    }
  }
}

/** Parses an HTTP Retry-After header (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (!value) return undefined;
  if (/^\s*-/.test(value)) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
