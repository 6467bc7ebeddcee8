import {
  BackhaulError,
  errorCatalog,
  fromProblem,
  isErrorCode,
  problemTypeBase,
  toProblem,
} from '@backhaul/core';
import { describe, expect, it } from 'vitest';

describe('status and retryable come from the one catalogue', () => {
  it.each([
    ['invalid-message', 400, false],
    ['unauthorized', 401, false],
    ['forbidden', 403, false],
    ['chunk-conflict', 409, false],
    ['chunk-out-of-window', 409, true],
    ['gone', 410, false],
    ['payload-too-large', 413, false],
    ['unsupported-codec', 415, false],
    ['checksum-mismatch', 422, true],
    ['file-incomplete', 422, false],
    ['too-many-requests', 429, true],
    ['query-failed', 502, false],
    ['gateway-unavailable', 503, true],
  ] as const)('%s is %i, retryable %s', (code, status, retryable) => {
    const error = new BackhaulError(code, 'message');
    expect(error.status).toBe(status);
    expect(error.retryable).toBe(retryable);
    expect(error.code).toBe(code);
    expect(error.name).toBe('BackhaulError');
    expect(error).toBeInstanceOf(Error);
  });

  it('every entry has an HTTP error status and a title', () => {
    for (const [code, entry] of Object.entries(errorCatalog)) {
      expect(entry.status, code).toBeGreaterThanOrEqual(400);
      expect(entry.status, code).toBeLessThan(600);
      expect(entry.title.length, code).toBeGreaterThan(0);
      expect(isErrorCode(code)).toBe(true);
    }
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('nope')).toBe(false);
  });

  it('options override retryable and carry retryAfterMs, cause and details', () => {
    const cause = new Error('socket closed');
    const error = new BackhaulError('service-unavailable', 'later', {
      retryable: false,
      retryAfterMs: 2_000,
      cause,
      details: { backend: 'redis' },
    });
    expect(error.status).toBe(503);
    expect(error.retryable).toBe(false);
    expect(error.retryAfterMs).toBe(2_000);
    expect(error.cause).toBe(cause);
    expect(error.details).toEqual({ backend: 'redis' });
  });
});

describe('§2 toProblem writes an RFC 9457 body with code and retryable; fromProblem reads it back', () => {
  it('round trip keeps code, status, message, retryable and extensions', () => {
    const original = new BackhaulError('unsupported-codec', "Codec 'brotli' is not accepted", {
      details: { accepted: ['identity', 'zstd'] },
    });
    const problem = toProblem(original);
    expect(problem).toEqual({
      type: `${problemTypeBase}unsupported-codec`,
      title: 'The codec is not accepted by this server',
      status: 415,
      code: 'unsupported-codec',
      detail: "Codec 'brotli' is not accepted",
      retryable: false,
      accepted: ['identity', 'zstd'],
    });
    // Through the wire, as the HTTP layer and the client see it.
    const back = fromProblem(415, JSON.parse(JSON.stringify(problem)), undefined);
    expect(back).toMatchObject({
      code: 'unsupported-codec',
      status: 415,
      message: "Codec 'brotli' is not accepted",
      retryable: false,
      details: { accepted: ['identity', 'zstd'] },
    });
    expect(toProblem(back)).toEqual(problem);
  });

  it('the example body of §2 reads as a retryable checksum-mismatch', () => {
    const body = {
      type: 'https://backhaul.dev/problems/checksum-mismatch',
      title: 'The checksum does not match the bytes',
      status: 422,
      code: 'checksum-mismatch',
      detail: 'chunk 3: expected 9f...',
      retryable: true,
    };
    const error = fromProblem(422, body);
    expect(error).toMatchObject({
      code: 'checksum-mismatch',
      status: 422,
      retryable: true,
      message: body.detail,
    });
    expect(error.details).toBeUndefined();
    expect(toProblem(error)).toEqual(body);
  });

  it('a detail named like a standard member never overwrites it', () => {
    const problem = toProblem(
      new BackhaulError('invalid-state', 'no', {
        details: { status: 200, code: 'ok', retryable: true, state: 'completed' },
      }),
    );
    expect(problem).toMatchObject({
      status: 409,
      code: 'invalid-state',
      retryable: false,
      state: 'completed',
    });
  });

  it('keeps the server’s retryable and the Retry-After it was given', () => {
    const error = fromProblem(
      503,
      { code: 'gateway-unavailable', detail: 'not connected', retryable: false },
      5_000,
    );
    expect(error.retryable).toBe(false);
    expect(error.retryAfterMs).toBe(5_000);
  });

  it('a body that is not a problem falls back to a code from the status', () => {
    expect(fromProblem(401, 'Unauthorized').code).toBe('unauthorized');
    expect(fromProblem(403, null).code).toBe('forbidden');
    expect(fromProblem(404, {}).code).toBe('not-found');
    expect(fromProblem(413, {}).code).toBe('payload-too-large');
    expect(fromProblem(429, {}).code).toBe('too-many-requests');
    expect(fromProblem(502, '<html>Bad Gateway</html>')).toMatchObject({
      code: 'internal',
      retryable: true,
      message: 'HTTP 502',
    });
    expect(fromProblem(503, {})).toMatchObject({ code: 'service-unavailable', retryable: true });
    expect(fromProblem(504, {}).code).toBe('timeout');
    expect(fromProblem(400, { code: 'not-a-code' }).code).toBe('bad-request');
  });
});

describe('isInstance works across duplicated package copies, where instanceof does not', () => {
  it('recognises an error carrying the registered marker of another copy', () => {
    // Another copy of @backhaul/core defines its own class, but Symbol.for returns the same
    // symbol in every copy, so the marker is the same.
    const otherCopyMarker: unique symbol = Symbol.for('backhaul.error');
    class OtherCopyError extends Error {
      readonly [otherCopyMarker] = true;
      readonly code = 'timeout';
    }
    const foreign = new OtherCopyError('from the other copy');
    expect(foreign instanceof BackhaulError).toBe(false);
    expect(BackhaulError.isInstance(foreign)).toBe(true);
    expect(BackhaulError.isInstance(new BackhaulError('timeout', 'x'))).toBe(true);
  });

  it('rejects lookalikes without the marker, and non-objects', () => {
    expect(BackhaulError.isInstance(new Error('plain'))).toBe(false);
    expect(BackhaulError.isInstance({ code: 'timeout', status: 504, retryable: true })).toBe(false);
    expect(BackhaulError.isInstance({ [Symbol('backhaul.error')]: true })).toBe(false);
    expect(BackhaulError.isInstance({ [Symbol.for('backhaul.error')]: 'yes' })).toBe(false);
    expect(BackhaulError.isInstance(null)).toBe(false);
    expect(BackhaulError.isInstance(undefined)).toBe(false);
    expect(BackhaulError.isInstance('timeout')).toBe(false);
  });

  it('structuredClone drops symbol keys: a cloned error is not one, so errors cross threads as problems', () => {
    const cloned = structuredClone(new BackhaulError('timeout', 'slow'));
    expect(BackhaulError.isInstance(cloned)).toBe(false);
    const viaProblem = fromProblem(504, structuredClone(toProblem(new BackhaulError('timeout', 'slow'))));
    expect(BackhaulError.isInstance(viaProblem)).toBe(true);
    expect(viaProblem.code).toBe('timeout');
  });
});
