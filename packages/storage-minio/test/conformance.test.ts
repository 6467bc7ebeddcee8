import { randomUUID } from 'node:crypto';
import { runObjectStorageConformance } from '@backhaul/core/testing';
import { afterAll, beforeAll, describe } from 'vitest';
import { createS3Storage } from '../src/index.js';
import { endpoints, type S3Endpoint } from './s3-endpoints.js';

for (const { label, connect } of endpoints) {
  describe.skipIf(!connect)(`S3 storage on ${label}`, () => {
    let endpoint: S3Endpoint;
    beforeAll(async () => {
      endpoint = await connect!();
    });
    afterAll(async () => {
      await endpoint?.stop();
    });

    // The storage builds its own client here, so its default client settings are what is tested.
    runObjectStorageConformance('s3', async () => {
      const { endpoint: url, region, credentials, forcePathStyle } = endpoint.clientConfig;
      const storage = createS3Storage({
        bucket: endpoint.bucket,
        endpoint: url as string,
        region: region as string,
        credentials: credentials as { accessKeyId: string; secretAccessKey: string } | undefined,
        forcePathStyle,
        // A prefix per test: each starts from an empty storage, and the sweep stays inside it.
        prefix: `conformance/${randomUUID()}`,
      });
      return { storage, cleanup: async () => void (await storage.sweep(Number.MAX_SAFE_INTEGER)) };
    });
  });
}
