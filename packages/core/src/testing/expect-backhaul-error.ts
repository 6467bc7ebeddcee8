import { expect } from 'vitest';
import { BackhaulError, type ErrorCode } from '../errors.js';

/**
 * Awaits work that must fail with a `BackhaulError` (and, when given, this `code`) and returns the
 * error for further checks. Fails the test when the work succeeds or fails with anything else.
 */
export async function expectBackhaulError(
  work: Promise<unknown> | (() => Promise<unknown>),
  code?: ErrorCode,
): Promise<BackhaulError> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (error) {
    expect(BackhaulError.isInstance(error), `expected a BackhaulError, got ${String(error)}`).toBe(true);
    if (code !== undefined) expect((error as BackhaulError).code).toBe(code);
    return error as BackhaulError;
  }
  throw new Error(
    `expected a BackhaulError${code === undefined ? '' : ` '${code}'`}, but the work succeeded`,
  );
}
