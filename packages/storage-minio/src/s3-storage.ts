import {
  AbortMultipartUploadCommand,
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  type LifecycleRule,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutBucketLifecycleConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  BackhaulError,
  type ByteRange,
  type ObjectStorage,
  type ObjectUpload,
  type StoredObject,
  type UploadOptions,
} from '@backhaul/core';
import { normalizePrefix, toObjectKey } from './object-key.js';
import {
  isMissingBucket,
  isMissingLifecycle,
  isMissingObject,
  isMissingUpload,
  isUnsatisfiableRange,
  isUnsupported,
  storageFailed,
} from './s3-errors.js';
import { S3Upload, s3MaxPartSize, s3MaxParts, s3MinPartSize } from './s3-upload.js';

export interface S3StorageOptions {
  bucket: string;
  /** A client of your own (middleware, custom agent, credentials provider); `endpoint`, `region`, `credentials` and `forcePathStyle` are then ignored. */
  client?: S3Client;
  /** e.g. `http://127.0.0.1:9000` for MinIO; omit for AWS. */
  endpoint?: string;
  /** Default `us-east-1` (MinIO's default too). */
  region?: string;
  /** Omit to use the SDK's default chain (environment, shared config, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** `http://host/bucket/key` instead of `http://bucket.host/key`; MinIO and s3rver need it. */
  forcePathStyle?: boolean;
  /** Bytes per multipart part but the last. Default 5 MiB, S3's minimum. */
  partSize?: number;
  /** UploadPart requests in flight per upload. Default 4. */
  partConcurrency?: number;
  /** Lifetime of a presigned URL when `presignGet` is called without one. Default 3600 (1 hour). */
  presignExpiresSeconds?: number;
  /** How long results are kept: used by `sweepExpired` and `applyLifecycle`. Default 1 hour. */
  retentionMs?: number;
  /** Key prefix of every object (a '/' is appended if missing); the sweep touches nothing outside it. */
  prefix?: string;
}

export interface S3Storage extends ObjectStorage {
  presignGet(key: string, expiresInSeconds?: number): Promise<string>;
  /** Creates the bucket if it does not exist. */
  ensureBucket(): Promise<void>;
  /**
   * Adds (or replaces) a lifecycle rule that expires objects under the prefix and aborts their
   * incomplete uploads after the retention rounded up to whole days, keeping the bucket's other
   * rules. Resolves false when the endpoint has no lifecycle support.
   */
  applyLifecycle(): Promise<boolean>;
  /** Sweeps everything under the prefix older than `now - retentionMs`; returns the count removed. */
  sweepExpired(now?: number): Promise<number>;
}

const dayMs = 86_400_000;
/** SigV4 refuses presigned URLs valid longer than 7 days. */
const maxPresignSeconds = 604_800;
const sweepDeleteConcurrency = 8;

/**
 * `ObjectStorage` on S3, MinIO or any S3-compatible endpoint. Uploads are multipart with parts of
 * at least 5 MiB sent a few at a time; downloads are presigned GET URLs the caller fetches from
 * the storage directly.
 */
export function createS3Storage(options: S3StorageOptions): S3Storage {
  const settings = validateOptions(options);
  const { bucket, partSize, partConcurrency, presignExpiresSeconds, retentionMs, prefix } = settings;
  const client =
    options.client ??
    new S3Client({
      endpoint: options.endpoint,
      region: options.region ?? 'us-east-1',
      credentials: options.credentials,
      forcePathStyle: options.forcePathStyle,
      // Since SDK 3.729 every upload carries CRC32 checksum headers by default, which several
      // S3-compatible stores refuse (Backblaze B2, some MinIO and R2 releases); WHEN_REQUIRED is the
      // usual fix. Integrity does not rest on it: SigV4 still signs each body's SHA-256
      // (x-amz-content-sha256), which S3 checks, and the ingest verified every byte beforehand.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });

  const head = async (key: string, objectKey: string): Promise<StoredObject | undefined> => {
    try {
      const output = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey }));
      return {
        key,
        size: output.ContentLength ?? 0,
        createdAt: output.LastModified?.getTime() ?? Date.now(),
      };
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw storageFailed(`read the metadata of '${key}'`, error);
    }
  };

  const abortUpload = async (objectKey: string, uploadId: string): Promise<boolean> => {
    try {
      await client.send(
        new AbortMultipartUploadCommand({ Bucket: bucket, Key: objectKey, UploadId: uploadId }),
      );
      return true;
    } catch (error) {
      if (isMissingUpload(error)) return false;
      throw storageFailed(`abort the abandoned upload of '${objectKey}'`, error);
    }
  };

  /** Multipart uploads initiated before the cutoff: crashed servers' leftovers, billed until aborted. */
  const sweepUploads = async (createdBefore: number): Promise<number> => {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page: Awaited<ReturnType<typeof listUploads>>;
      try {
        page = await listUploads(keyMarker, uploadIdMarker);
      } catch (error) {
        // s3rver has no ListMultipartUploads (and no abort either): nothing to sweep there.
        if (isUnsupported(error)) return aborted;
        throw storageFailed('list multipart uploads to sweep', error);
      }
      for (const upload of page.Uploads ?? []) {
        const initiated = upload.Initiated?.getTime();
        if (!upload.Key || !upload.UploadId || initiated === undefined || initiated >= createdBefore)
          continue;
        if (await abortUpload(upload.Key, upload.UploadId)) aborted++;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined);
    return aborted;
  };

  const listUploads = (keyMarker: string | undefined, uploadIdMarker: string | undefined) =>
    client.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        Prefix: prefix || undefined,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      }),
    );

  const sweepObjects = async (createdBefore: number): Promise<number> => {
    let removed = 0;
    let continuationToken: string | undefined;
    do {
      const page = await client
        .send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix || undefined,
            ContinuationToken: continuationToken,
          }),
        )
        .catch((error: unknown) => {
          throw storageFailed('list objects to sweep', error);
        });
      const expired = (page.Contents ?? []).flatMap((object) =>
        object.Key && object.LastModified && object.LastModified.getTime() < createdBefore
          ? [object.Key]
          : [],
      );
      // One DeleteObject each, a few at a time: DeleteObjects needs a body checksum that several
      // S3-compatible servers disagree about, and a sweep deletes a handful of objects a minute.
      for (let start = 0; start < expired.length; start += sweepDeleteConcurrency) {
        await Promise.all(
          expired.slice(start, start + sweepDeleteConcurrency).map(async (objectKey) => {
            await client
              .send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey }))
              .catch((error: unknown) => {
                throw storageFailed(`sweep '${objectKey}'`, error);
              });
            removed++;
          }),
        );
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
    return removed;
  };

  const storage: S3Storage = {
    specificationVersion: 'v1',
    name: 's3',
    // minPartSize is the part size we want, not only S3's floor: the ingest then hands over whole
    // parts that go out without being copied again.
    capabilities: { presignedUrls: true, minPartSize: partSize, maxParts: s3MaxParts },

    async beginUpload(key: string, uploadOptions?: UploadOptions): Promise<ObjectUpload> {
      const objectKey = toObjectKey(prefix, key);
      return new S3Upload({
        client,
        bucket,
        objectKey,
        key,
        contentType: uploadOptions?.contentType,
        partSize,
        partConcurrency,
        describe: () => head(key, objectKey),
      });
    },

    async head(key: string): Promise<StoredObject | undefined> {
      return head(key, toObjectKey(prefix, key));
    },

    async read(key: string, range?: ByteRange): Promise<AsyncIterable<Uint8Array>> {
      if (range) assertValidRange(range);
      const objectKey = toObjectKey(prefix, key);
      if (range && range.end !== undefined && range.end === range.start) {
        // HTTP cannot ask for zero bytes; the object must still exist.
        if (!(await head(key, objectKey))) throw notFound(key);
        return emptyStream();
      }
      try {
        const output = await client.send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: objectKey,
            Range: range ? toRangeHeader(range) : undefined,
          }),
        );
        // In Node the body is an http.IncomingMessage: an async iterable of Buffers, no copy.
        const body = (output.Body as AsyncIterable<Uint8Array> | undefined) ?? emptyStream();
        if (!range) return body;
        // HTTP lets a server ignore Range and answer with more than was asked (s3rver sends the whole
        // object for 'bytes=0-0', labelled 'bytes 0-last/size'): trust only what Content-Range says.
        const served = parseContentRange(output.ContentRange);
        const wantedEnd = range.end ?? Number.POSITIVE_INFINITY;
        const servedEnd = served ? served.end : Number.POSITIVE_INFINITY;
        if (served?.start === range.start && servedEnd <= wantedEnd) return body;
        const offset = served?.start ?? 0;
        return sliceStream(body, range.start - offset, wantedEnd - offset);
      } catch (error) {
        if (isMissingObject(error)) throw notFound(key);
        // A start at or past the end: the object exists, the range is just empty (as on disk).
        if (isUnsatisfiableRange(error)) return emptyStream();
        throw storageFailed(`read '${key}'`, error);
      }
    },

    async delete(key: string): Promise<void> {
      const objectKey = toObjectKey(prefix, key);
      try {
        // S3 answers 204 for a missing key as well.
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey }));
      } catch (error) {
        if (isMissingObject(error)) return;
        throw storageFailed(`delete '${key}'`, error);
      }
    },

    async presignGet(key: string, expiresInSeconds = presignExpiresSeconds): Promise<string> {
      if (
        !Number.isInteger(expiresInSeconds) ||
        expiresInSeconds < 1 ||
        expiresInSeconds > maxPresignSeconds
      ) {
        throw new BackhaulError(
          'bad-request',
          `A presigned URL lives 1 to ${maxPresignSeconds} seconds, got ${expiresInSeconds}`,
        );
      }
      const objectKey = toObjectKey(prefix, key);
      try {
        return await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: objectKey }), {
          expiresIn: expiresInSeconds,
        });
      } catch (error) {
        throw storageFailed(`presign a download of '${key}'`, error);
      }
    },

    async sweep(createdBefore: number): Promise<number> {
      const removed = await sweepObjects(createdBefore);
      return removed + (await sweepUploads(createdBefore));
    },

    sweepExpired(now = Date.now()) {
      return storage.sweep(now - retentionMs);
    },

    async ensureBucket(): Promise<void> {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
        return;
      } catch (error) {
        if (!isMissingBucket(error)) throw storageFailed(`check bucket '${bucket}'`, error);
      }
      const region = await client.config.region();
      try {
        await client.send(
          new CreateBucketCommand({
            Bucket: bucket,
            // AWS refuses an explicit us-east-1 and requires every other region to be named.
            CreateBucketConfiguration:
              region && region !== 'us-east-1'
                ? { LocationConstraint: region as BucketLocationConstraint }
                : undefined,
          }),
        );
      } catch (error) {
        const name = (error as { name?: string } | undefined)?.name;
        if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return;
        throw storageFailed(`create bucket '${bucket}'`, error);
      }
    },

    async applyLifecycle(): Promise<boolean> {
      const ruleId = `backhaul-retention${prefix ? `:${prefix}` : ''}`.slice(0, 255);
      // Lifecycle rules count whole days from creation (S3's minimum is 1): the sweep stays the
      // guarantee for the 1-hour retention; the rule is the backstop when no server sweeps.
      const days = Math.max(1, Math.ceil(retentionMs / dayMs));
      let rules: LifecycleRule[];
      try {
        const current = await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }));
        rules = current.Rules ?? [];
      } catch (error) {
        if (isUnsupported(error)) return false;
        if (!isMissingLifecycle(error))
          throw storageFailed(`read the lifecycle of bucket '${bucket}'`, error);
        rules = [];
      }
      // PutBucketLifecycleConfiguration replaces the whole set: keep every rule that is not ours.
      const ours: LifecycleRule = {
        ID: ruleId,
        Status: 'Enabled',
        Filter: { Prefix: prefix },
        Expiration: { Days: days },
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: days },
      };
      try {
        await client.send(
          new PutBucketLifecycleConfigurationCommand({
            Bucket: bucket,
            LifecycleConfiguration: { Rules: [...rules.filter((rule) => rule.ID !== ruleId), ours] },
          }),
        );
        return true;
      } catch (error) {
        if (isUnsupported(error)) return false;
        throw storageFailed(`set the lifecycle of bucket '${bucket}'`, error);
      }
    },
  };
  return storage;
}

interface S3StorageSettings {
  bucket: string;
  partSize: number;
  partConcurrency: number;
  presignExpiresSeconds: number;
  retentionMs: number;
  prefix: string;
}

function validateOptions(options: S3StorageOptions): S3StorageSettings {
  if (typeof options?.bucket !== 'string' || options.bucket.length === 0) {
    throw new TypeError('createS3Storage: bucket must be a bucket name');
  }
  const partSize = options.partSize ?? s3MinPartSize;
  if (!Number.isSafeInteger(partSize) || partSize < s3MinPartSize || partSize > s3MaxPartSize) {
    throw new RangeError(
      `createS3Storage: partSize must be an integer from ${s3MinPartSize} (5 MiB, S3's minimum part) to ${s3MaxPartSize}, got ${partSize}`,
    );
  }
  const partConcurrency = options.partConcurrency ?? 4;
  if (!Number.isSafeInteger(partConcurrency) || partConcurrency < 1) {
    throw new RangeError(
      `createS3Storage: partConcurrency must be a positive integer, got ${partConcurrency}`,
    );
  }
  const presignExpiresSeconds = options.presignExpiresSeconds ?? 3600;
  if (
    !Number.isSafeInteger(presignExpiresSeconds) ||
    presignExpiresSeconds < 1 ||
    presignExpiresSeconds > maxPresignSeconds
  ) {
    throw new RangeError(
      `createS3Storage: presignExpiresSeconds must be 1 to ${maxPresignSeconds}, got ${presignExpiresSeconds}`,
    );
  }
  const retentionMs = options.retentionMs ?? 3_600_000;
  if (!Number.isFinite(retentionMs) || retentionMs < 0) {
    throw new RangeError(`createS3Storage: retentionMs must be a non-negative number, got ${retentionMs}`);
  }
  return {
    bucket: options.bucket,
    partSize,
    partConcurrency,
    presignExpiresSeconds,
    retentionMs,
    prefix: normalizePrefix(options.prefix),
  };
}

function assertValidRange(range: ByteRange): void {
  const { start, end } = range;
  const validStart = Number.isSafeInteger(start) && start >= 0;
  const validEnd = end === undefined || (Number.isSafeInteger(end) && end >= start);
  if (!validStart || !validEnd) {
    throw new BackhaulError('bad-request', `Invalid byte range ${JSON.stringify(range)}`);
  }
}

/** HTTP ranges are inclusive at both ends; ours ends exclusive. */
function toRangeHeader(range: ByteRange): string {
  return range.end === undefined ? `bytes=${range.start}-` : `bytes=${range.start}-${range.end - 1}`;
}

async function* emptyStream(): AsyncIterable<Uint8Array> {}

/** 'bytes 0-9/100' → { start: 0, end: 10 } (end exclusive); undefined when absent or unreadable. */
function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  const match = header ? /^bytes (\d+)-(\d+)\//.exec(header) : null;
  if (!match) return undefined;
  return { start: Number(match[1]), end: Number(match[2]) + 1 };
}

/** Yields bytes [start, end) of a whole-object stream; leaving the loop early destroys the body. */
async function* sliceStream(body: AsyncIterable<Uint8Array>, start: number, end = Number.POSITIVE_INFINITY) {
  let position = 0;
  for await (const piece of body) {
    const from = Math.max(start - position, 0);
    const to = Math.min(end - position, piece.length);
    position += piece.length;
    if (to > from) yield piece.subarray(from, to);
    if (position >= end) return;
  }
}

function notFound(key: string): BackhaulError {
  return new BackhaulError('not-found', `No object '${key}'`);
}
