import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { BackhaulError, type ObjectUpload, type StoredObject } from '@backhaul/core';
import { isMissingUpload, isUnsupported, storageFailed } from './s3-errors.js';

/** S3: "Each part must be at least 5 MB in size, except the last part." (5 MiB, in fact.) */
export const s3MinPartSize = 5 * 1024 * 1024;
/** S3: "Part numbers can be any number from 1 to 10,000, inclusive." */
export const s3MaxParts = 10_000;
/** S3: a part is at most 5 GiB. */
export const s3MaxPartSize = 5 * 1024 * 1024 * 1024;

export interface S3UploadTarget {
  client: S3Client;
  bucket: string;
  /** The S3 key, prefix included. */
  objectKey: string;
  /** The key as the caller named it, prefix excluded. */
  key: string;
  contentType: string | undefined;
  partSize: number;
  partConcurrency: number;
  /** Reads the stored object back once it is visible, for its size and S3's creation time. */
  describe: () => Promise<StoredObject | undefined>;
}

type UploadState = 'open' | 'completing' | 'completed' | 'aborted' | 'failed';

/**
 * One multipart upload. Bytes are re-buffered into parts of at least `partSize` whatever piece
 * sizes the caller hands over, because S3 refuses a non-final part under 5 MiB at completion
 * (after every part was paid for) and lenient endpoints such as s3rver do not refuse it at all.
 *
 * Memory per upload is bounded by one buffering part plus `partConcurrency` parts in flight:
 * `writePart` waits for a free slot before it resolves, which pushes back on the ingest.
 *
 * The multipart upload is created lazily with the first full part; an object that never fills one
 * part is stored with a single PutObject on `complete()`.
 */
export class S3Upload implements ObjectUpload {
  readonly key: string;
  #state: UploadState = 'open';
  /** Caller's pieces not yet sent, held by reference: the ingest never reuses a buffer it handed over. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #bytesSent = 0;
  #partsStarted = 0;
  /** ETags by part number - 1, filled as parts finish in any order. */
  readonly #etags: string[] = [];
  /** UploadPart tasks in flight; they never reject (failures land in #failure). */
  readonly #inFlight = new Set<Promise<void>>();
  #creating: Promise<string> | undefined;
  #uploadId: string | undefined;
  /** Writes run one after another in call order, even when the caller does not await each. */
  #writes: Promise<void> = Promise.resolve();
  #failure: BackhaulError | undefined;
  #discarding: Promise<BackhaulError | undefined> | undefined;

  constructor(private readonly target: S3UploadTarget) {
    this.key = target.key;
  }

  writePart(bytes: Uint8Array): Promise<void> {
    // Checked at call time: writes queued before complete() still belong to the object.
    if (this.#state !== 'open' && this.#failure === undefined) {
      return Promise.reject(this.#invalidState('writePart'));
    }
    const write = this.#writes.then(() => this.#append(bytes));
    this.#writes = write.catch(() => undefined);
    return write;
  }

  async complete(): Promise<StoredObject> {
    await this.#throwIfFailed();
    if (this.#state !== 'open') throw this.#invalidState('complete');
    this.#state = 'completing';
    await this.#writes;
    await this.#throwIfFailed();
    const { client, bucket, objectKey } = this.target;
    try {
      if (this.#uploadId === undefined && this.#creating === undefined) {
        // Never reached one full part: a single PutObject, no multipart upload to clean up.
        const body = this.#takePending();
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: objectKey,
            Body: body,
            ContentLength: body.length,
            ContentType: this.target.contentType,
          }),
        );
        this.#bytesSent += body.length;
      } else {
        if (this.#pendingBytes > 0) await this.#sendPart(this.#takePending());
        await Promise.all(this.#inFlight);
        await this.#throwIfFailed();
        const uploadId = this.#uploadId!;
        const parts = this.#etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 }));
        await client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: objectKey,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
      }
    } catch (error) {
      await this.#fail(error, `complete the upload of '${this.key}'`);
      await this.#throwIfFailed();
    }
    this.#state = 'completed';
    const stored = await this.target.describe().catch(() => undefined);
    // S3 is read-after-write consistent; the fallback only covers an endpoint that is not.
    return stored ?? { key: this.key, size: this.#bytesSent, createdAt: Date.now() };
  }

  async abort(): Promise<void> {
    if (this.#state === 'completed' || this.#state === 'completing') return;
    if (this.#state === 'open') this.#state = 'aborted';
    this.#discarding ??= this.#discardRemote();
    const abortFailure = await this.#discarding;
    // A caller that aborts wants to know when parts may linger (the sweep removes them later).
    if (abortFailure && this.#state === 'aborted') throw abortFailure;
  }

  async #append(bytes: Uint8Array): Promise<void> {
    if (this.#stopped()) return this.#rejectStopped('writePart');
    if (bytes.length === 0) return;
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    // Every part but the last is at least partSize: only a full buffer is sent before complete().
    if (this.#pendingBytes >= this.target.partSize) await this.#sendPart(this.#takePending());
  }

  /** Starts one UploadPart once a slot is free; resolves when it is in flight, not when it is done. */
  async #sendPart(body: Uint8Array): Promise<void> {
    const partNumber = ++this.#partsStarted;
    if (partNumber > s3MaxParts) {
      const limit = s3MaxParts * this.target.partSize;
      await this.#fail(
        new BackhaulError(
          'payload-too-large',
          `'${this.key}' needs more than ${s3MaxParts} parts of ${this.target.partSize} bytes (about ${limit} bytes); raise partSize`,
        ),
        `upload '${this.key}'`,
      );
      throw this.#failure;
    }
    while (this.#inFlight.size >= this.target.partConcurrency) await Promise.race(this.#inFlight);
    // Checked synchronously right before each request: a clean-up that started meanwhile has
    // already looked for the multipart upload and the parts it must wait for.
    if (this.#stopped()) return this.#rejectStopped('writePart');
    let uploadId: string;
    try {
      uploadId = await this.#ensureMultipartUpload();
    } catch (error) {
      await this.#fail(error, `start a multipart upload of '${this.key}'`);
      throw this.#failure;
    }
    if (this.#stopped()) return this.#rejectStopped('writePart');
    const task = this.target.client
      .send(
        new UploadPartCommand({
          Bucket: this.target.bucket,
          Key: this.target.objectKey,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
      )
      .then((output) => {
        if (!output.ETag) throw new Error(`part ${partNumber} was stored without an ETag`);
        this.#etags[partNumber - 1] = output.ETag;
        this.#bytesSent += body.length;
      })
      .catch((error: unknown) => {
        // Not awaited: the discard waits for this very task, which settles right after this returns.
        void this.#fail(error, `upload part ${partNumber} of '${this.key}'`);
      })
      .finally(() => {
        this.#inFlight.delete(task);
      });
    this.#inFlight.add(task);
  }

  #ensureMultipartUpload(): Promise<string> {
    this.#creating ??= this.target.client
      .send(
        new CreateMultipartUploadCommand({
          Bucket: this.target.bucket,
          Key: this.target.objectKey,
          ContentType: this.target.contentType,
        }),
      )
      .then((output) => {
        if (!output.UploadId) throw new Error('the endpoint returned no UploadId');
        this.#uploadId = output.UploadId;
        return output.UploadId;
      });
    return this.#creating;
  }

  #takePending(): Uint8Array {
    const pieces = this.#pending;
    const size = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    // One piece (the ingest's usual whole part) goes out as is; several are joined once.
    if (pieces.length === 1) return pieces[0]!;
    return Buffer.concat(pieces, size);
  }

  /** Records the first failure and starts the clean-up; later failures keep the first reason. */
  #fail(error: unknown, operation: string): Promise<BackhaulError | undefined> {
    this.#failure ??= storageFailed(operation, error);
    if (this.#state === 'open' || this.#state === 'completing') this.#state = 'failed';
    this.#discarding ??= this.#discardRemote();
    return this.#discarding;
  }

  /** Rejects with the recorded failure once the multipart upload is aborted, so no part lingers. */
  async #throwIfFailed(): Promise<void> {
    if (this.#failure === undefined) return;
    await this.#discarding;
    throw this.#failure;
  }

  /** Failed or aborted: no request may start any more. */
  #stopped(): boolean {
    return this.#failure !== undefined || this.#state === 'aborted';
  }

  async #rejectStopped(operation: string): Promise<never> {
    await this.#throwIfFailed();
    throw this.#invalidState(operation);
  }

  #invalidState(operation: string): BackhaulError {
    return new BackhaulError(
      'invalid-state',
      `${operation} on an upload of '${this.key}' that is ${this.#state}`,
    );
  }

  /**
   * Drops the buffered bytes and aborts the multipart upload, after every part in flight has
   * settled: S3 warns that a part still uploading during an abort may survive it. Returns the
   * abort's own failure, if any, instead of throwing, so the caller's first error is kept.
   */
  async #discardRemote(): Promise<BackhaulError | undefined> {
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#creating?.catch(() => undefined);
    await Promise.all(this.#inFlight);
    const uploadId = this.#uploadId;
    if (uploadId === undefined) return undefined;
    try {
      await this.target.client.send(
        new AbortMultipartUploadCommand({
          Bucket: this.target.bucket,
          Key: this.target.objectKey,
          UploadId: uploadId,
        }),
      );
      return undefined;
    } catch (error) {
      // Already gone is fine; an endpoint without the call (s3rver) keeps the parts, out of sight.
      if (isMissingUpload(error) || isUnsupported(error)) return undefined;
      return storageFailed(`abort the multipart upload of '${this.key}'`, error);
    }
  }
}
