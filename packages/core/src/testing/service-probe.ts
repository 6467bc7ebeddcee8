import { beforeAll, describe } from 'vitest';

export interface ServiceProbeOptions {
  /** Where the service is expected (a URL, host:port), for the messages. */
  at: string;
  /** Whose tests skip, for the warning: e.g. '@backhaul/source-postgres tests'. */
  skipping: string;
  /** How to get the service, for the warning: e.g. 'Start PostgreSQL, or set BACKHAUL_POSTGRES_URL'. */
  hint: string;
  /** A probe that neither answers nor fails within this long counts as unreachable. Default 5000. */
  timeoutMs?: number;
  /** Whether a missing service fails the suites instead of skipping them. Default: BACKHAUL_REQUIRE_SERVICES=1. */
  required?: boolean;
}

/** What one probe of a real service found, and the suite gate that follows from it. */
export interface ServiceProbe {
  readonly name: string;
  readonly available: boolean;
  /** Why the service did not answer; undefined when it did. */
  readonly reason: string | undefined;
  /** True when suites needing the service should not run at all: it is missing and nobody requires it. */
  readonly skip: boolean;
  /** A `describe` that skips (the warning was already printed) or, when the service is required, fails. */
  describe(title: string, suite: () => void): void;
  /** Call first inside a suite: a `beforeAll` that fails every test of it when the service is missing. */
  require(): void;
  /** Throws when the service is missing; what `require()` runs in its `beforeAll`. */
  assertAvailable(): void;
}

const DEFAULT_TIMEOUT_MS = 5000;

/**
 * Probes a service a test file needs (a database, Redis) once, at module load. On a laptop without
 * it the suites skip, loudly (one console.warn naming the service and how to start it); in CI,
 * where BACKHAUL_REQUIRE_SERVICES=1, a missing service fails every test of them instead, so a
 * broken service container can never pass as a green run.
 *
 *     export const postgresService = await probeService('PostgreSQL', () => selectOne(url), {
 *       at: url,
 *       skipping: '@backhaul/source-postgres tests',
 *       hint: 'Start PostgreSQL, or set BACKHAUL_POSTGRES_URL',
 *     });
 *     postgresService.describe('postgres source: limits', () => { ... });
 *
 * `probe` resolves when the service answers and rejects (with the driver's error) when it does not.
 */
export async function probeService(
  name: string,
  probe: () => Promise<void>,
  options: ServiceProbeOptions,
): Promise<ServiceProbe> {
  const reason = await unreachableReason(probe, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const required = options.required ?? process.env.BACKHAUL_REQUIRE_SERVICES === '1';
  const available = reason === undefined;
  const skip = !available && !required;
  if (skip) {
    console.warn(
      `\n⚠ SKIPPING ${options.skipping}: ${name} at ${options.at} is unreachable (${reason}). ` +
        `${options.hint}; BACKHAUL_REQUIRE_SERVICES=1 makes this a failure.\n`,
    );
  }
  const gate: ServiceProbe = {
    name,
    available,
    reason,
    skip,
    describe(title, suite) {
      describe.skipIf(skip)(title, () => {
        gate.require();
        suite();
      });
    },
    require() {
      beforeAll(() => gate.assertAvailable());
    },
    assertAvailable() {
      if (!available) {
        throw new Error(
          `${name} at ${options.at} is unreachable (${reason}) and BACKHAUL_REQUIRE_SERVICES=1 requires it`,
        );
      }
    },
  };
  return gate;
}

/** Undefined when the probe resolved in time; otherwise why not, in the driver's words. */
async function unreachableReason(probe: () => Promise<void>, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([probe(), timedOut]);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message || String(error) : String(error);
  } finally {
    clearTimeout(timer);
  }
}
