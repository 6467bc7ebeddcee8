import { createServer } from 'node:net';
import { type ReadyProcess, startReadyProcess } from './ready-process.js';

export type { ExitStatus } from './ready-process.js';

/**
 * Starts test/support/server-process.ts as a child process and watches it: the way a test crashes
 * a real server (failpoints) and starts it again on the same port and Redis prefix.
 */

/** The one gateway and the one caller a server process knows. */
export const processGatewayId = 'gw-process';
export const processGatewayToken = 'gateway-token-for-the-server-process';
export const processCallerToken = 'caller-token-for-the-server-process';
export const processDownloadSecret = 'download-secret-for-the-server-process';

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
  /** The server's `admission` limits. */
  admission?: Record<string, number>;
  /** Count admission slots in Redis under `prefix`, with this lease. */
  admissionLeaseMs?: number;
  /** Log the server's messages to this process's stderr. */
  log?: boolean;
}

export interface ServerProcess extends ReadyProcess<{ url: string; pid: number }> {
  url: string;
  pid: number;
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
  const optional = (value: number | string | undefined) => (value === undefined ? undefined : String(value));
  const started = await startReadyProcess<{ url: string; pid: number }>({
    script: new URL('./server-process.ts', import.meta.url),
    env: {
      PORT: String(options.port),
      PREFIX: options.prefix ?? '',
      CODECS: (options.codecs ?? []).join(','),
      STORAGE_DIR: options.storageDir,
      BACKHAUL_TEST_FAILPOINTS: options.failpoints ?? '',
      LOG: options.log ? '1' : '',
      REDIS_URL: optional(options.redisUrl),
      ACK_TIMEOUT_MS: optional(options.ackTimeoutMs),
      SWEEP_INTERVAL_MS: optional(options.sweepIntervalMs),
      MAX_REDELIVERIES: optional(options.maxRedeliveries),
      ADMISSION: options.admission ? JSON.stringify(options.admission) : undefined,
      ADMISSION_LEASE_MS: optional(options.admissionLeaseMs),
    },
    log: options.log,
    readyTimeoutMs,
  });
  return { ...started, url: started.ready.url, pid: started.ready.pid };
}
