import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs one of the test/support/*-process.ts scripts as a child process (through tsx, so it runs
 * the packages' sources, never a stale dist/) and waits for the one JSON line it prints on stdout
 * once it is ready: how end-to-end tests get real server and gateway processes they can SIGKILL.
 */

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ReadyProcess<Ready> {
  /** The JSON line the process printed when it was ready. */
  ready: Ready;
  child: ChildProcess;
  /** Resolves when the process has ended, however it ended. */
  exited: Promise<ExitStatus>;
  /** What it wrote on stderr so far (for failure messages). */
  stderr(): string;
  /** SIGTERM (a clean shutdown), then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<ExitStatus>;
  /** SIGKILL: a crash, no clean-up of any kind; resolves once it has exited. */
  kill(): Promise<ExitStatus>;
}

export interface ReadyProcessOptions {
  /** The script, e.g. `new URL('./server-process.ts', import.meta.url)`. */
  script: URL;
  /** Added to this process's environment; `undefined` removes a variable. */
  env: Record<string, string | undefined>;
  /** Echo the child's stderr to this process's stderr. */
  log?: boolean;
  readyTimeoutMs?: number;
}

export async function startReadyProcess<Ready>(options: ReadyProcessOptions): Promise<ReadyProcess<Ready>> {
  const { readyTimeoutMs = 20_000 } = options;
  const name = fileURLToPath(options.script).replace(repositoryRoot, '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // tsx resolves `@backhaul/*` through this tsconfig's `paths`: the sources, not dist/.
    TSX_TSCONFIG_PATH: `${repositoryRoot}tsconfig.json`,
  };
  for (const [key, value] of Object.entries(options.env)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(options.script)], {
    cwd: repositoryRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr += text;
    if (options.log) process.stderr.write(text);
  });
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  const ready = await new Promise<Ready>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${readyTimeoutMs} ms: ${stderr}`));
    }, readyTimeoutMs);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      stdout += text;
      const newline = stdout.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout.slice(0, newline)) as Ready);
      } catch (error) {
        reject(error);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} ended before it was ready (${code ?? signal}): ${stderr}`));
    });
  });

  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    ready,
    child,
    exited,
    stderr: () => stderr,
    async stop(graceMs = 5000) {
      if (running()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const status = await exited;
        clearTimeout(timer);
        return status;
      }
      return exited;
    },
    async kill() {
      if (running()) child.kill('SIGKILL');
      return exited;
    },
  };
}
