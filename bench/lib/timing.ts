import { performance } from 'node:perf_hooks';

/** Milliseconds on the monotonic clock. */
export const now = (): number => performance.now();

/** Nanoseconds on CLOCK_MONOTONIC, comparable between processes of this machine. */
export const monotonicNs = (): bigint => process.hrtime.bigint();

/** Named instants from a common start, reported as seconds since the start. */
export class Stages {
  readonly #start = now();
  readonly #marks = new Map<string, number>();

  mark(name: string, at = now()): void {
    if (!this.#marks.has(name)) this.#marks.set(name, at);
  }

  /** Overwrites: for "last" events. */
  set(name: string, at = now()): void {
    this.#marks.set(name, at);
  }

  seconds(name: string): number | undefined {
    const at = this.#marks.get(name);
    return at === undefined ? undefined : (at - this.#start) / 1000;
  }

  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, at] of this.#marks) out[name] = Math.round(at - this.#start) / 1000;
    return out;
  }
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
