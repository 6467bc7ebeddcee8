import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { createS3Storage } from '../src/index.js';

/** An S3 endpoint the suites run against, with a bucket that already exists. */
export interface S3Endpoint {
  /** 's3rver' or 'external'; a few assertions differ (s3rver lacks lifecycle and upload listing). */
  kind: 's3rver' | 'external';
  bucket: string;
  clientConfig: S3ClientConfig;
  stop(): Promise<void>;
}

const testBucket = 'backhaul-test';

/** The same client settings `createS3Storage` uses for a client of its own. */
const checksumSettings = {
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
} as const;

/** s3rver in this process, on a free port, storing into a fresh temporary directory. */
export async function startS3rver(): Promise<S3Endpoint> {
  const directory = await mkdtemp(join(tmpdir(), 'backhaul-s3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: [{ name: testBucket }],
  });
  const { port } = await server.run();
  return {
    kind: 's3rver',
    bucket: testBucket,
    clientConfig: {
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      forcePathStyle: true,
      ...checksumSettings,
    },
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * A real S3 or MinIO endpoint from BACKHAUL_S3_* variables, or undefined. It is optional: no
 * MinIO ships for this machine, so s3rver is the endpoint CI always has.
 */
export const externalEndpoint: (() => Promise<S3Endpoint>) | undefined = process.env.BACKHAUL_S3_ENDPOINT
  ? async () => {
      const accessKeyId = process.env.BACKHAUL_S3_ACCESS_KEY_ID;
      const secretAccessKey = process.env.BACKHAUL_S3_SECRET_ACCESS_KEY;
      const bucket = process.env.BACKHAUL_S3_BUCKET ?? testBucket;
      const clientConfig: S3ClientConfig = {
        endpoint: process.env.BACKHAUL_S3_ENDPOINT,
        region: process.env.BACKHAUL_S3_REGION ?? 'us-east-1',
        credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
        forcePathStyle: process.env.BACKHAUL_S3_FORCE_PATH_STYLE !== 'false',
        ...checksumSettings,
      };
      // A fresh MinIO has no bucket yet.
      const client = new S3Client(clientConfig);
      await createS3Storage({ bucket, client }).ensureBucket();
      client.destroy();
      return { kind: 'external', bucket, clientConfig, async stop() {} };
    }
  : undefined;

if (!externalEndpoint) {
  console.warn(
    '\n⚠ SKIPPING the @backhaul/storage-minio suites against a real S3/MinIO endpoint: BACKHAUL_S3_ENDPOINT is not set. ' +
      'They ran against s3rver only, which accepts undersized parts and lacks lifecycle rules and ListMultipartUploads. ' +
      'Set BACKHAUL_S3_ENDPOINT, BACKHAUL_S3_BUCKET, BACKHAUL_S3_ACCESS_KEY_ID, BACKHAUL_S3_SECRET_ACCESS_KEY and BACKHAUL_S3_REGION to run them.\n',
  );
}

/** Every endpoint to run the suites against: s3rver always, the external one when configured. */
export const endpoints: { label: string; connect: (() => Promise<S3Endpoint>) | undefined }[] = [
  { label: 's3rver', connect: startS3rver },
  { label: 'external S3 (BACKHAUL_S3_ENDPOINT)', connect: externalEndpoint },
];
