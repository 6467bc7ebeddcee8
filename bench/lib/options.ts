/**
 * Bench options: `--key=value` flags (or a bare `--flag` for true), else the environment variable
 * `BENCH_KEY` (upper case, dashes as underscores), else the default. `--help` prints the table.
 */
export interface OptionSpec {
  default: string | number | boolean | undefined;
  help: string;
}

export type Parsed<S extends Record<string, OptionSpec>> = {
  [K in keyof S]: S[K]['default'] extends number
    ? number
    : S[K]['default'] extends boolean
      ? boolean
      : S[K]['default'] extends string
        ? string
        : string | undefined;
};

export function envName(key: string): string {
  return `BENCH_${key.replace(/-/g, '_').toUpperCase()}`;
}

export function parseOptions<S extends Record<string, OptionSpec>>(
  bench: string,
  spec: S,
  argv = process.argv.slice(2),
): Parsed<S> {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') {
      console.log(`npm run bench:${bench} -- [--key=value ...]   (or BENCH_KEY=value)\n`);
      for (const [key, option] of Object.entries(spec)) {
        console.log(`  --${key.padEnd(22)} ${option.help} (default: ${String(option.default ?? 'none')})`);
      }
      process.exit(0);
    }
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!match) throw new Error(`unknown argument ${arg}: options are --key=value (see --help)`);
    const key = match[1]!;
    if (!(key in spec)) throw new Error(`unknown option --${key} (see --help)`);
    flags.set(key, match[2] ?? 'true');
  }
  const result: Record<string, unknown> = {};
  for (const [key, option] of Object.entries(spec)) {
    const raw = flags.get(key) ?? process.env[envName(key)];
    if (raw === undefined || raw === '') {
      result[key] = option.default;
      continue;
    }
    if (typeof option.default === 'number') {
      const value = Number(raw.replace(/_/g, ''));
      if (!Number.isFinite(value)) throw new Error(`--${key} must be a number, got ${raw}`);
      result[key] = value;
    } else if (typeof option.default === 'boolean') {
      if (!['true', 'false', '1', '0', 'yes', 'no'].includes(raw))
        throw new Error(`--${key} is true or false`);
      result[key] = raw === 'true' || raw === '1' || raw === 'yes';
    } else {
      result[key] = raw;
    }
  }
  return result as Parsed<S>;
}

export function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new Error(`--${name} must be one of ${allowed.join(', ')}, got ${value}`);
  }
  return value as T;
}

/** Rebuilds flags for a child process (used to re-run the gateway side inside a namespace). */
export function toFlags(values: Record<string, unknown>): string[] {
  return Object.entries(values)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `--${key}=${String(value)}`);
}
