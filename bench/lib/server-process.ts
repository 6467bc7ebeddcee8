import { join } from 'node:path';
import type { ServerConfig } from './server-main.js';
import { type Child, spawnTs } from './spawn.js';

export interface ServerProcess {
  url: string;
  pid: number;
  child: Child<{ url: string; pid: number }>;
  stop(): Promise<void>;
}

/** The server under test as its own process (so its RSS and CPU are its own), optionally in a namespace. */
export async function startServerProcess(
  config: ServerConfig,
  options: { netns?: string; nofile?: number; nodeFlags?: string[] } = {},
): Promise<ServerProcess> {
  const child = spawnTs<{ url: string; pid: number }>(
    join('bench', 'lib', 'server-main.ts'),
    [JSON.stringify(config)],
    { label: 'server', ...options },
  );
  const { url, pid } = await child.ready;
  return { url, pid, child, stop: () => child.stop() };
}
