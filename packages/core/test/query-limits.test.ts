import {
  BackhaulError,
  checkBatchSize,
  isAbortReason,
  resolveQueryLimits,
  watchQueryInterruptions,
} from '@backhaul/core';
import { describe, expect, it } from 'vitest';

const source = { statementTimeoutMs: 300_000, maxRows: 5000 };

describe("query limits: the request's own limits, capped by the source's", () => {
  it('timeoutMs from the request, else the statement timeout; maxRows never above the source cap', () => {
    expect(resolveQueryLimits({ sql: 'SELECT 1', params: [] }, source)).toEqual({
      timeoutMs: 300_000,
      maxRows: 5000,
    });
    expect(resolveQueryLimits({ sql: 'SELECT 1', params: [], timeoutMs: 200, maxRows: 10 }, source)).toEqual({
      timeoutMs: 200,
      maxRows: 10,
    });
    expect(resolveQueryLimits({ sql: 'SELECT 1', params: [], maxRows: 100_000 }, source).maxRows).toBe(5000);
    expect(
      resolveQueryLimits({ sql: 'SELECT 1', params: [] }, { ...source, maxRows: Number.POSITIVE_INFINITY })
        .maxRows,
    ).toBe(Number.POSITIVE_INFINITY);
  });

  it("no SQL, or a limit that is not a positive integer, is a 'bad-request'", () => {
    for (const request of [
      { sql: '  ', params: [] },
      { sql: 'SELECT 1', params: [], timeoutMs: 0 },
      { sql: 'SELECT 1', params: [], maxRows: 1.5 },
    ]) {
      expect(() => resolveQueryLimits(request, source)).toThrow(BackhaulError);
      try {
        resolveQueryLimits(request, source);
      } catch (error) {
        expect((error as BackhaulError).code).toBe('bad-request');
      }
    }
    expect(() => checkBatchSize(0)).toThrow('batchSize must be a positive integer, got 0');
    expect(() => checkBatchSize(10)).not.toThrow();
  });
});

describe('query interruptions: the caller aborts or the deadline passes', () => {
  it("an abort interrupts with the signal's reason, which isAbortReason recognises", () => {
    const controller = new AbortController();
    const reasons: unknown[] = [];
    const stop = watchQueryInterruptions({ signal: controller.signal, deadlineMs: undefined }, (reason) =>
      reasons.push(reason),
    );
    const reason = new Error('caller cancelled');
    controller.abort(reason);
    expect(reasons).toEqual([reason]);
    expect(isAbortReason(reason, controller.signal)).toBe(true);
    expect(isAbortReason(new Error('other'), controller.signal)).toBe(false);
    stop();
  });

  it("the deadline interrupts with a 'timeout'; stopping first means nothing fires", async () => {
    const reasons: unknown[] = [];
    watchQueryInterruptions({ signal: undefined, deadlineMs: 20 }, (reason) => reasons.push(reason));
    const stopped: unknown[] = [];
    const controller = new AbortController();
    const stop = watchQueryInterruptions({ signal: controller.signal, deadlineMs: 20 }, (reason) =>
      stopped.push(reason),
    );
    stop();
    controller.abort();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(reasons).toHaveLength(1);
    expect((reasons[0] as BackhaulError).code).toBe('timeout');
    expect(stopped).toEqual([]);
  });
});
