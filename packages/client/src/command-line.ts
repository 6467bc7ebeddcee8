import { parseArgs } from 'node:util';
import { BackhaulError, errorCatalog } from '@backhaul/core';

/**
 * What the `backhaul` and `backhaul-admin` programs share: reading the command line (a command,
 * its arguments, `--server` and a token from flags or the environment, `--json`, `--help`) and
 * turning a refusal into one line. Each program describes itself in a `ProgramSpec`.
 */
export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

export type OptionSpec = { type: 'string' | 'boolean'; short?: string };

export interface ProgramSpec {
  name: string;
  usage: string;
  /** How many arguments each command takes. */
  arity: Record<string, number>;
  /** Options besides --server, the token option, --json and --help. */
  options?: Record<string, OptionSpec>;
  /** The flag and the environment variable that carry the token, and what it is called in errors. */
  token: { option: string; variable: string; what: string };
}

export interface Invocation {
  command: string;
  args: string[];
  server: string;
  token: string;
  json: boolean;
  /** A string option's value, or undefined. */
  text(name: string): string | undefined;
  /** A boolean option's value. */
  flag(name: string): boolean;
}

/** Reads the command line; a number is the exit status to end with (0 after --help, 2 on wrong usage). */
export function readCommandLine(
  spec: ProgramSpec,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: CommandIo,
): Invocation | number {
  const wrongUsage = (message: string) => {
    io.err(`${spec.name}: ${message}\n\n${spec.usage}`);
    return 2;
  };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        ...spec.options,
        server: { type: 'string' },
        [spec.token.option]: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    return wrongUsage(error instanceof Error ? error.message : String(error));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    io.out(spec.usage);
    return 0;
  }
  const [command = '', ...args] = parsed.positionals;
  const expected = spec.arity[command];
  const server = (values.server as string | undefined) ?? env.BACKHAUL_SERVER_URL;
  const token = (values[spec.token.option] as string | undefined) ?? env[spec.token.variable];
  if (expected === undefined) return wrongUsage(`unknown command '${command}'`);
  if (args.length !== expected)
    return wrongUsage(`${command} takes ${expected} argument(s), got ${args.length}`);
  if (!server) return wrongUsage('give the server URL with --server or BACKHAUL_SERVER_URL');
  if (!token)
    return wrongUsage(`give ${spec.token.what} with ${spec.token.variable} or --${spec.token.option}`);
  return {
    command,
    args,
    server,
    token,
    json: values.json === true,
    text: (name) => (typeof values[name] === 'string' ? (values[name] as string) : undefined),
    flag: (name) => values[name] === true,
  };
}

/** A refusal reads as the problem's title and detail, e.g. "No such resource: Gateway 'x' is not enrolled". */
export function describeError(error: unknown): string {
  if (BackhaulError.isInstance(error)) return `${errorCatalog[error.code].title}: ${error.message}`;
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error instanceof Error ? error.message : String(error)}${cause}`;
}
