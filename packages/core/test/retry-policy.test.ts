import {
  BackhaulError,
  backoffDelay,
  defaultRetryPolicy,
  isRetryableError,
  parseRetryAfter,
  type RetryPolicy,
  sleep,
  withRetry,
} from '@backhaul/core';
import { describe, expect, it } from 'vitest';

const policy: RetryPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_000 };

describe('full jitter: attempt n waits a random time in [0, min(max, base * 2^(n-1))]', () => {
  it('is 0 when the random draw is 0 and just under the ceiling when it is just under 1', () => {
    const almostOne = () => 0.999_999_999;
    expect([1, 2, 3, 4].map((n) => backoffDelay(policy, n, undefined, () => 0))).toEqual([0, 0, 0, 0]);
    expect([1, 2, 3, 4].map((n) => backoffDelay(policy, n, undefined, almostOne))).toEqual([
      99, 199, 399, 799,
    ]);
    expect(backoffDelay(policy, 3, undefined, () => 0.5)).toBe(200);
  });

  it('never leaves [0, ceiling) over many draws, and uses the whole range', () => {
    const draws = Array.from({ length: 2_000 }, () => backoffDelay(policy, 3));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(400);
    // With 2,000 uniform draws both ends of the range are reached with overwhelming probability.
    expect(Math.min(...draws)).toBeLessThan(40);
    expect(Math.max(...draws)).toBeGreaterThan(360);
    expect(draws.every(Number.isInteger)).toBe(true);
  });
});

describe('the ceiling is capped at maxDelayMs however many attempts failed', () => {
  it('caps', () => {
    const almostOne = () => 0.999_999_999;
    expect(backoffDelay(policy, 5, undefined, almostOne)).toBe(999);
    expect(backoffDelay(policy, 50, undefined, almostOne)).toBe(999);
    expect(backoffDelay(policy, 2_000, undefined, almostOne)).toBe(999);
  });
});

describe('§2 clients MUST NOT retry before Retry-After', () => {
  it('waits exactly Retry-After, without jitter, even past maxDelayMs', () => {
    expect(backoffDelay(policy, 1, 2_500, () => 0)).toBe(2_500);
    expect(backoffDelay(policy, 1, 120_000, () => 0)).toBe(120_000);
    expect(backoffDelay(policy, 1, 0, () => 0.9)).toBe(0);
  });

  it('withRetry sleeps for the retryAfterMs a BackhaulError carries', async () => {
    const waits: number[] = [];
    let calls = 0;
    const value = await withRetry(
      policy,
      async () => {
        calls++;
        if (calls === 1) throw new BackhaulError('too-many-requests', 'slow down', { retryAfterMs: 7_000 });
        return 'ok';
      },
      { sleep: async (ms) => void waits.push(ms) },
    );
    expect(value).toBe('ok');
    expect(waits).toEqual([7_000]);
  });
});

describe('§3.7 a throttled answer (429 + Retry-After) does not use up a try', () => {
  it('waits each Retry-After and still has every try left for real failures', async () => {
    const waits: number[] = [];
    let calls = 0;
    const error = await withRetry(
      policy,
      async () => {
        calls++;
        if (calls <= 12) throw new BackhaulError('too-many-requests', 'no slot', { retryAfterMs: 1_000 });
        throw new BackhaulError('checksum-mismatch', `call ${calls}`);
      },
      { sleep: async (ms) => void waits.push(ms) },
    ).catch((e: unknown) => e);
    // 12 throttled answers, then maxAttempts (5) real tries.
    expect(calls).toBe(12 + policy.maxAttempts);
    expect(waits.slice(0, 12)).toEqual(Array(12).fill(1_000));
    expect((error as Error).message).toBe(`call ${12 + policy.maxAttempts}`);
  });

  it('stops waiting when the signal aborts', async () => {
    const controller = new AbortController();
    let calls = 0;
    const error = await withRetry(
      policy,
      async () => {
        calls++;
        if (calls === 3) controller.abort(new Error('stopped'));
        throw new BackhaulError('too-many-requests', 'no slot', { retryAfterMs: 1 });
      },
      { signal: controller.signal, sleep: async () => {} },
    ).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect((error as BackhaulError).code).toBe('too-many-requests');
  });

  it('with waitOutThrottling: false a 429 goes to isRetryable like any error (a caller that must see it)', async () => {
    let calls = 0;
    const error = await withRetry(
      policy,
      async () => {
        calls++;
        throw new BackhaulError('too-many-requests', 'no slot', { retryAfterMs: 1_000 });
      },
      { waitOutThrottling: false, isRetryable: () => false, sleep: async () => {} },
    ).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect((error as BackhaulError).code).toBe('too-many-requests');
  });
});

describe('withRetry stops after maxAttempts', () => {
  it('tries exactly maxAttempts times and throws the last error', async () => {
    const attempts: number[] = [];
    const retries: [number, number][] = [];
    const error = await withRetry(
      policy,
      async (attempt) => {
        attempts.push(attempt);
        throw new BackhaulError('checksum-mismatch', `try ${attempt}`);
      },
      { sleep: async () => {}, onRetry: (_e, attempt, delay) => retries.push([attempt, delay]) },
    ).catch((e: unknown) => e);
    expect(attempts).toEqual([1, 2, 3, 4, 5]);
    expect((error as Error).message).toBe('try 5');
    expect(retries.map(([attempt]) => attempt)).toEqual([1, 2, 3, 4]);
    retries.forEach(([attempt, delay]) => {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1)));
    });
  });

  it('returns the first success without waiting more', async () => {
    let waited = 0;
    const result = await withRetry(
      policy,
      async (attempt) => {
        if (attempt < 3) throw new Error('ECONNRESET');
        return attempt;
      },
      { sleep: async () => void waited++ },
    );
    expect(result).toBe(3);
    expect(waited).toBe(2);
  });

  it('the default allows the design’s 10 tries per chunk', () => {
    expect(defaultRetryPolicy.maxAttempts).toBe(10);
  });
});

describe('withRetry stops at once on a non-retryable error', () => {
  it('does not retry a non-retryable BackhaulError', async () => {
    let calls = 0;
    await expect(
      withRetry(
        policy,
        async () => {
          calls++;
          throw new BackhaulError('chunk-conflict', 'different bytes at index 3');
        },
        { sleep: async () => {} },
      ),
    ).rejects.toMatchObject({ code: 'chunk-conflict' });
    expect(calls).toBe(1);
  });

  it('honours a custom isRetryable and an abort signal', async () => {
    let calls = 0;
    await expect(
      withRetry(
        policy,
        async () => {
          calls++;
          throw new Error('nope');
        },
        { isRetryable: () => false, sleep: async () => {} },
      ),
    ).rejects.toThrow('nope');
    expect(calls).toBe(1);

    const controller = new AbortController();
    calls = 0;
    await expect(
      withRetry(
        policy,
        async () => {
          calls++;
          controller.abort();
          throw new Error('in flight');
        },
        { signal: controller.signal, sleep: async () => {} },
      ),
    ).rejects.toThrow('in flight');
    expect(calls).toBe(1);
  });

  it('classifies errors: catalogue retryability, aborts never, foreign network errors always', () => {
    expect(isRetryableError(new BackhaulError('checksum-mismatch', 'x'))).toBe(true);
    expect(isRetryableError(new BackhaulError('forbidden', 'x'))).toBe(false);
    expect(isRetryableError(new BackhaulError('internal', 'x', { retryable: false }))).toBe(false);
    expect(isRetryableError(new DOMException('aborted', 'AbortError'))).toBe(false);
    expect(isRetryableError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(true);
  });

  it('sleep rejects with the abort reason when aborted', async () => {
    const controller = new AbortController();
    const waiting = sleep(60_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    await expect(sleep(1, AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });
});

describe('parseRetryAfter reads delay-seconds and HTTP-date', () => {
  it('seconds', () => {
    expect(parseRetryAfter('0')).toBe(0);
    expect(parseRetryAfter('5')).toBe(5_000);
    expect(parseRetryAfter('120')).toBe(120_000);
  });

  it('HTTP-date, relative to now, and never negative', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
  });

  it('absent or unreadable: undefined, so the caller falls back to backoff', () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
