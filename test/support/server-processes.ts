import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Starts test/support/server-process.ts as a child process and watches it: the way a test crashes
 * a real server (failpoints) and starts it again on the same port and Redis prefix.
 */

/** The one gateway and the one caller a server process knows. */
export const processGatewayId = 'gw-process';
export const processGatewayToken = 'gateway-token-for-the-server-process';
export const processCallerToken = 'caller-token-for-the-server-process';
export const processDownloadSecret = 'download-secret-for-the-server-process';

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));
const script = fileURLToPath(new URL('./server-process.ts', import.meta.url));

export interface ServerProcessOptions {
  port: number;
  /** Redis key prefix; processes that share one command log use the same. Without: memory store. */
  prefix?: string;
  /** Chunk codecs the server accepts besides identity. */
  codecs?: ('zstd' | 'lz4')[];
  storageDir: string;
  redisUrl?: string;
  ackTimeoutMs?: number;
  sweepIntervalMs?: number;
  maxRedeliveries?: number;
  /** Comma-separated failpoint names (BACKHAUL_TEST_FAILPOINTS). */
  failpoints?: string;
  /** Log the server's messages to this process's stderr. */
  log?: boolean;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Resolves when the process has ended, however it ended. */
  exited: Promise<ExitStatus>;
  /** What it wrote on stderr so far (for failure messages). */
  stderr(): string;
  /** SIGTERM (a clean shutdown), then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<ExitStatus>;
}

/** A TCP port free right now on 127.0.0.1 (the process is then started on it, and restarted on it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function startServerProcess(
  options: ServerProcessOptions,
  readyTimeoutMs = 20_000,
): Promise<ServerProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(options.port),
    PREFIX: options.prefix ?? '',
    CODECS: (options.codecs ?? []).join(','),
    STORAGE_DIR: options.storageDir,
    // tsx resolves `@backhaul/*` through this tsconfig's `paths`: the sources, not dist/.
    TSX_TSCONFIG_PATH: `${repositoryRoot}tsconfig.json`,
    BACKHAUL_TEST_FAILPOINTS: options.failpoints ?? '',
    LOG: options.log ? '1' : '',
  };
  const optional: [string, number | string | undefined][] = [
    ['REDIS_URL', options.redisUrl],
    ['ACK_TIMEOUT_MS', options.ackTimeoutMs],
    ['SWEEP_INTERVAL_MS', options.sweepIntervalMs],
    ['MAX_REDELIVERIES', options.maxRedeliveries],
  ];
  for (const [name, value] of optional) {
    if (value === undefined) delete env[name];
    else env[name] = String(value);
  }
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
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

  const ready = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server process did not start within ${readyTimeoutMs} ms: ${stderr}`));
    }, readyTimeoutMs);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      stdout += text;
      const newline = stdout.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout.slice(0, newline)) as { url: string; pid: number });
      } catch (error) {
        reject(error);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server process ended before it was ready (${code ?? signal}): ${stderr}`));
    });
  });

  return {
    url: ready.url,
    pid: ready.pid,
    child,
    exited,
    stderr: () => stderr,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const status = await exited;
        clearTimeout(timer);
        return status;
      }
      return exited;
    },
  };
}
