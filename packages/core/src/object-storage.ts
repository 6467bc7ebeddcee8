/**
 * Where assembled result files live. Parts arrive in order from the chunk ingest, already
 * verified and decoded; every part but the last is at least `capabilities.minPartSize` bytes.
 */
export interface ObjectStorage {
  readonly specificationVersion: 'v1';
  readonly name: string;
  readonly capabilities: StorageCapabilities;
  beginUpload(key: string, options?: UploadOptions): Promise<ObjectUpload>;
  head(key: string): Promise<StoredObject | undefined>;
  /** Streams an object's bytes, from `start` (inclusive) to `end` (exclusive) when given. */
  read(key: string, range?: ByteRange): Promise<AsyncIterable<Uint8Array>>;
  delete(key: string): Promise<void>;
  /** Present when `capabilities.presignedUrls`: a URL the caller downloads from directly. */
  presignGet?(key: string, expiresInSeconds: number): Promise<string>;
  /** Deletes objects (and abandoned uploads) created before `createdBefore` (epoch ms); returns the count. */
  sweep(createdBefore: number): Promise<number>;
}

export interface StorageCapabilities {
  /** The storage signs its own download URLs (S3); otherwise the server signs and serves them. */
  presignedUrls: boolean;
  /** Smallest part but the last (S3: 5 MiB). */
  minPartSize: number;
  /** Most parts in one upload (S3: 10,000). */
  maxParts: number;
}

export interface UploadOptions {
  contentType?: string;
}

export interface ObjectUpload {
  readonly key: string;
  writePart(bytes: Uint8Array): Promise<void>;
  /** Makes the object visible whole, atomically; before this, readers see nothing. */
  complete(): Promise<StoredObject>;
  /** Discards everything written; safe to call more than once. */
  abort(): Promise<void>;
}

export interface StoredObject {
  key: string;
  size: number;
  /** Epoch ms. */
  createdAt: number;
}

export interface ByteRange {
  start: number;
  end?: number;
}
