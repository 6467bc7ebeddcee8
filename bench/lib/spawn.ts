import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { progress } from './report.js';

/** The repository root: children run from there so tsx finds tsconfig.json's @backhaul/* paths. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface SpawnOptions {
  /** Run inside this network namespace (`ip netns exec`), e.g. bh_api. */
  netns?: string;
  /** Raise the open-file limit of the child (`ulimit -n` in a shell that then execs node). */
  nofile?: number;
  env?: Record<string, string>;
  /** Label of relayed output lines. */
  label: string;
  /** Extra node flags, e.g. --max-old-space-size, --cpu-prof. */
  nodeFlags?: string[];
  /** Relay the child's JSON messages as progress lines too (default true; off for chatty children). */
  relayMessages?: boolean;
}

export interface Child<R> {
  process: ChildProcess;
  /** PID of the node process itself (ip netns exec and the shell both exec, so it is the same). */
  pid: number;
  /** The first stdout line that parses as JSON with `"ready": true`. */
  ready: Promise<R>;
  /** JSON lines the child printed after ready (messages to the parent). */
  onMessage(listener: (message: Record<string, unknown>) => void): void;
  /** Resolves when the child exits, with its exit code and the last JSON line it printed. */
  exited: Promise<{ code: number | null; lastJson: Record<string, unknown> | undefined }>;
  stop(): Promise<void>;
}

/**
 * Starts `node --import tsx <script> ...args` (TypeScript straight from the sources) and relays its
 * output as progress lines. The child reports readiness with one JSON line `{"ready":true,...}`.
 */
export function spawnTs<R = Record<string, unknown>>(
  script: string,
  args: string[],
  options: SpawnOptions,
): Child<R> {
  let command = process.execPath;
  let argv = [...(options.nodeFlags ?? []), '--import', 'tsx', script, ...args];
  if (options.nofile) {
    argv = ['-c', `ulimit -n ${options.nofile} && exec "$@"`, 'sh', command, ...argv];
    command = '/bin/sh';
  }
  if (options.netns) {
    argv = ['netns', 'exec', options.netns, command, ...argv];
    command = 'ip';
  }
  const child = spawn(command, argv, {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const listeners: ((message: Record<string, unknown>) => void)[] = [];
  let resolveReady!: (value: R) => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<R>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => {});
  let isReady = false;
  let lastJson: Record<string, unknown> | undefined;
  const stdoutDone = new Promise<void>((resolve) => child.stdout!.once('close', resolve));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('{')) {
      try {
        const message = JSON.parse(line) as Record<string, unknown>;
        lastJson = message;
        if (!isReady && message.ready === true) {
          isReady = true;
          resolveReady(message as R);
          return;
        }
        if (isReady) {
          for (const listener of listeners) listener(message);
          if (options.relayMessages === false) return;
        }
      } catch {
        // not JSON: relay it
      }
    }
    progress(`  ${options.label}| ${line}`);
  });
  createInterface({ input: child.stderr! }).on('line', (line) => progress(`  ${options.label}! ${line}`));
  const exited = once(child, 'exit');
  child.once('exit', (code, signal) => {
    if (!isReady) rejectReady(new Error(`${options.label} exited (${code ?? signal}) before it was ready`));
  });
  child.once('error', (error) => rejectReady(error));
  return {
    process: child,
    pid: child.pid!,
    ready,
    onMessage: (listener) => listeners.push(listener),
    exited: exited.then(async ([code]) => {
      await stdoutDone;
      return { code: code as number | null, lastJson };
    }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A child script's side: say ready with a JSON line, stop cleanly on SIGTERM. */
export function announceReady(info: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ready: true, ...info })}\n`);
}

export function onTerminate(cleanup: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // A cleanup that hangs (a connection that will not close) must not keep the process alive.
    setTimeout(() => process.exit(0), 3000).unref();
    cleanup().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Parses a child's single JSON argument. */
export function childConfig<T>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error('this script is started by a bench with a JSON configuration argument');
  return JSON.parse(raw) as T;
}
