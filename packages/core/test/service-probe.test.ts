import { probeService } from '@backhaul/core/testing';
import { describe, expect, it, vi } from 'vitest';

const where = { at: 'tcp://127.0.0.1:1', skipping: 'the tests of this file', hint: 'Start it' };
const refused = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'));

describe('probeService: a reachable service runs its suites, a missing one skips loudly or fails', () => {
  it('a probe that resolves: available, nothing skipped, nothing printed', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const service = await probeService('Thing', async () => undefined, where);
    expect(service).toMatchObject({ name: 'Thing', available: true, reason: undefined, skip: false });
    expect(() => service.assertAvailable()).not.toThrow();
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });

  it("on a laptop (not required) a probe that rejects skips, with a warning in the driver's words", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const service = await probeService('Thing', refused, { ...where, required: false });
    expect(service).toMatchObject({
      available: false,
      skip: true,
      reason: 'connect ECONNREFUSED 127.0.0.1:1',
    });
    expect(warn).toHaveBeenCalledOnce();
    expect(String(warn.mock.calls[0]![0])).toMatch(
      /SKIPPING the tests of this file: Thing at tcp:\/\/127\.0\.0\.1:1 is unreachable \(connect ECONNREFUSED.*Start it; BACKHAUL_REQUIRE_SERVICES=1/s,
    );
    warn.mockRestore();
  });

  it('when required (CI) a missing service does not skip: the suite fails in beforeAll', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const service = await probeService('Thing', refused, { ...where, required: true });
    expect(service.skip).toBe(false);
    expect(warn).not.toHaveBeenCalled();
    expect(() => service.assertAvailable()).toThrow(
      'Thing at tcp://127.0.0.1:1 is unreachable (connect ECONNREFUSED 127.0.0.1:1) and BACKHAUL_REQUIRE_SERVICES=1 requires it',
    );
    warn.mockRestore();
  });

  it('a probe that never answers counts as unreachable after timeoutMs', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const service = await probeService('Thing', () => new Promise<void>(() => undefined), {
      ...where,
      required: false,
      timeoutMs: 50,
    });
    expect(service).toMatchObject({ available: false, reason: 'no answer within 50 ms' });
    warn.mockRestore();
  });
});

const reachable = await probeService('Thing', async () => undefined, where);
reachable.describe('probeService: describe() of a reachable service runs its tests', () => {
  it('runs', () => {
    expect(reachable.available).toBe(true);
  });
});
