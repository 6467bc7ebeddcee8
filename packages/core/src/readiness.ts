import { BackhaulError } from './errors.js';

/**
 * Readiness (`/readyz` of the server and of a gateway's status port): each dependency is asked
 * one cheap question at once, each under `timeoutMs`. Returns the names of those that failed or
 * did not answer in time; their errors are dropped on purpose, since they may carry hosts or keys.
 */
export async function failedProbes(
  probes: Record<string, () => Promise<unknown>>,
  timeoutMs: number,
): Promise<string[]> {
  const outcomes = await Promise.all(
    Object.entries(probes).map(async ([name, probe]) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      try {
        const outcome = await Promise.race([probe().then(() => 'ok' as const), timeout]);
        return outcome === 'ok' ? undefined : name;
      } catch {
        return name;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return outcomes.filter((name): name is string => name !== undefined);
}

/** The 503 problem a `/readyz` answers with: what is not ready, never why. */
export function notReady(failed: readonly string[]): BackhaulError {
  return new BackhaulError('service-unavailable', `Not ready; failed checks: ${failed.join(', ')}`, {
    retryAfterMs: 5000,
    details: { failed: [...failed] },
  });
}
