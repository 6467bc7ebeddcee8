// Starting the server side of a bench (storage + server process), on loopback or in bh_api.

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dataDir } from './dataset.js';
import { progress } from './report.js';
import { type ServerProcess, startServerProcess } from './server-process.js';
import { type StorageKind, startS3rver } from './storage.js';
import { WAN } from './wan.js';

export interface ServerSide {
  server: ServerProcess;
  stop(): Promise<void>;
}

export async function startServerSide(options: {
  storage: StorageKind;
  wan: boolean;
  gateways?: number;
  heartbeatMs?: number;
  nofile?: number;
  nodeFlags?: string[];
  sharedUploads?: boolean;
}): Promise<ServerSide> {
  const netns = options.wan ? WAN.serverNs : undefined;
  // e.g. BENCH_SERVER_NODE_FLAGS="--cpu-prof --cpu-prof-dir=.bench-data/prof" to profile the server.
  const nodeFlags = options.nodeFlags ?? process.env.BENCH_SERVER_NODE_FLAGS?.split(/\s+/).filter(Boolean);
  const run = `${process.pid}`;
  let s3: Awaited<ReturnType<typeof startS3rver>> | undefined;
  const root = join(dataDir(), `storage-${run}`);
  if (options.storage === 's3') {
    s3 = await startS3rver(join(dataDir(), `s3rver-${run}`), netns ? { netns } : {});
    progress(`s3rver listening at ${s3.config.endpoint}${netns ? ` in ${netns}` : ''}`);
  }
  const server = await startServerProcess(
    {
      host: options.wan ? WAN.serverHost : '127.0.0.1',
      port: 0,
      storage: options.storage === 's3' ? { kind: 's3', s3: s3!.config } : { kind: 'fs', root },
      gateways: options.gateways ?? 1,
      ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
      ...(options.sharedUploads ? { sharedUploads: true } : {}),
    },
    {
      ...(netns ? { netns } : {}),
      ...(options.nofile ? { nofile: options.nofile } : {}),
      ...(nodeFlags ? { nodeFlags } : {}),
    },
  );
  progress(
    `server listening at ${server.url} (pid ${server.pid})${netns ? ` in ${netns}` : ''}, storage ${options.storage}`,
  );
  return {
    server,
    async stop() {
      await server.stop();
      await s3?.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
