import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { probeService } from '@backhaul/core/testing';
import { pingRedis } from './ping-redis.js';
import { freePort } from './server-processes.js';

/**
 * A redis-server of the test's own, on a free port, for tests that crash and restart Redis: the
 * shared one on 6379 is never touched. It runs with `appendonly yes` and `appendfsync always` in
 * its own directory, because "no acknowledged command is lost when Redis restarts" holds only
 * for a Redis that writes every acknowledged write to disk first (docs/redis.md, Durability).
 */
export interface PrivateRedis {
  url: string;
  port: number;
  /** SIGKILL: a crash, nothing flushed beyond what the AOF already has. */
  crash(): Promise<void>;
  /** Starts it again on the same port and directory; resolves once it answers PING. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Whether a redis-server binary can be run here; suites skip loudly without one. */
export const redisServerBinary = await probeService(
  'redis-server',
  async () => {
    await promisify(execFile)('redis-server', ['--version']);
  },
  {
    at: 'PATH',
    skipping: 'the Redis restart suite',
    hint: 'Install redis-server (apt-get install redis-server)',
  },
);

export async function startPrivateRedis(dir: string): Promise<PrivateRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const start = async () => {
    const server = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    child = server;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (server.exitCode !== null) throw new Error(`redis-server exited with ${server.exitCode}`);
      try {
        await pingRedis(url);
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  const end = async (signal: NodeJS.Signals) => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill(signal);
    await exited;
  };

  await start();
  return { url, port, crash: () => end('SIGKILL'), restart: start, stop: () => end('SIGTERM') };
}
