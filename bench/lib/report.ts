import { performance } from 'node:perf_hooks';
import type { CodecChoice } from '@backhaul/gateway-node';

/**
 * Output rules shared by every bench: progress lines while it runs (prefixed, to stdout), and one
 * JSON object as the very last stdout line. Children's lines are relayed through `progress`.
 */
const started = performance.now();
let benchName = 'bench';

export function setBenchName(name: string): void {
  benchName = name;
}

export function progress(message: string, data?: Record<string, unknown>): void {
  const at = ((performance.now() - started) / 1000).toFixed(2).padStart(7);
  process.stdout.write(`[${benchName} ${at}s] ${message}${data ? ` ${JSON.stringify(data)}` : ''}\n`);
}

/** Prints the result as the last line and exits once stdout is flushed (children are gone by then). */
export function finish(result: Record<string, unknown>): Promise<never> {
  return new Promise(() => {
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  });
}

/** Runs a bench's main; an error prints a message, a JSON line with `error`, and exits 1. */
export function runMain(
  name: string,
  main: () => Promise<Record<string, unknown>>,
  cleanup?: () => Promise<void>,
): void {
  setBenchName(name);
  const stop = async (code: number, result: Record<string, unknown>) => {
    try {
      await cleanup?.();
    } catch (error) {
      progress(`cleanup failed: ${String(error)}`);
    }
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(code));
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void stop(130, { bench: name, error: `interrupted by ${signal}` }));
  }
  main().then(
    (result) => stop(0, result),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      void stop(1, { bench: name, error: error instanceof Error ? error.message : String(error) });
    },
  );
}

export const round = (value: number, digits = 3): number => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

export const mb = (bytes: number): number => bytes / 1_048_576;

/** Why `--codec=auto` chose as it did, as last-line keys beside `codec_chosen` (none without auto). */
export function codecChoiceFields(choice: CodecChoice | undefined): Record<string, unknown> {
  if (!choice) return {};
  return {
    codec_reason: choice.reason,
    codec_sample_ratio: round(choice.sampleRatio),
    // The link goodput (MB/s on the wire) the last sample was weighed against, once one was measured.
    ...(choice.goodput === undefined ? {} : { codec_goodput_mb_s: round(choice.goodput / 1e6, 1) }),
  };
}
