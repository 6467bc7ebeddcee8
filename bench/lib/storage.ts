import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectStorage } from '@backhaul/core';
import { createFsStorage } from '@backhaul/storage-fs';
import { createS3Storage } from '@backhaul/storage-minio';
import { spawnTs } from './spawn.js';

export type StorageKind = 'fs' | 's3';

export interface StorageConfig {
  kind: StorageKind;
  /** fs: the storage root. */
  root?: string;
  /** s3: an endpoint (s3rver started by the bench, or any S3/MinIO). */
  s3?: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string };
}

/** The server side's storage: the same adapter, for Backhaul and for the raw and naive sinks. */
export async function openStorage(config: StorageConfig): Promise<ObjectStorage> {
  if (config.kind === 'fs') {
    await mkdir(config.root!, { recursive: true });
    return createFsStorage({ root: config.root! });
  }
  const s3 = config.s3!;
  const storage = createS3Storage({
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    forcePathStyle: true,
  });
  await storage.ensureBucket();
  return storage;
}

/** s3rver in its own process (so it does not share the server's event loop), storing under `dir`. */
export async function startS3rver(dir: string, options: { netns?: string; port?: number } = {}) {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const child = spawnTs<{ port: number }>(
    join('bench', 'lib', 's3rver-main.ts'),
    [JSON.stringify({ dir, port: options.port ?? 0 })],
    { label: 's3rver', ...(options.netns ? { netns: options.netns } : {}) },
  );
  const { port } = await child.ready;
  return {
    child,
    config: {
      endpoint: `http://127.0.0.1:${port}`,
      bucket: 'backhaul-bench',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      region: 'us-east-1',
    },
    async stop() {
      await child.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
