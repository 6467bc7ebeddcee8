import { randomUUID } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  BackhaulError,
  type ByteRange,
  type ObjectStorage,
  type ObjectUpload,
  type StoredObject,
  type UploadOptions,
} from '@backhaul/core';
import {
  assertNoSymlinkedParents,
  isMissing,
  resolveObjectPath,
  uploadsDirectoryName,
} from './object-key.js';

export interface FsStorageOptions {
  /** Directory that holds every object; created if missing. */
  root: string;
  /** How long objects are kept before `sweepExpired` removes them. Default 1 hour, as results are. */
  retentionMs?: number;
  /** Called when a background sweep started by `startSweeper` fails; the sweeper keeps running. */
  onSweepError?: (error: unknown) => void;
}

export interface FsStorage extends ObjectStorage {
  /** Sweeps everything older than `now - retentionMs`; returns the count removed. */
  sweepExpired(now?: number): Promise<number>;
  /** Runs `sweepExpired` every `intervalMs` (default 1 minute) without holding the process open; returns a stop function. */
  startSweeper(intervalMs?: number): () => void;
}

const readHighWaterMark = 1024 * 1024;
// O_NOFOLLOW: the last path component may not be a symbolic link (parents are checked by lstat).
const openForRead = constants.O_RDONLY | constants.O_NOFOLLOW;

/**
 * `ObjectStorage` on the local disk. An upload appends to a temporary file under
 * `<root>/.uploads/` and is renamed into place on `complete()`, so readers see either nothing,
 * the previous object, or the whole new one, never a partial file.
 */
export function createFsStorage(options: FsStorageOptions): FsStorage {
  if (typeof options.root !== 'string' || options.root.length === 0) {
    throw new TypeError('createFsStorage: root must be a directory path');
  }
  const retentionMs = options.retentionMs ?? 3_600_000;
  if (!Number.isFinite(retentionMs) || retentionMs < 0) {
    throw new RangeError(`createFsStorage: retentionMs must be a non-negative number, got ${retentionMs}`);
  }
  const root = resolve(options.root);
  const uploadsDirectory = join(root, uploadsDirectoryName);
  let ready: Promise<unknown> | undefined;
  const ensureRoot = () => {
    ready ??= mkdir(uploadsDirectory, { recursive: true }).catch((error: unknown) => {
      ready = undefined;
      throw storageFailed('create the storage root', error);
    });
    return ready;
  };

  /** Resolves a key and checks its directories; the one gate between a key and the disk. */
  const locate = async (key: string): Promise<string> => {
    const path = resolveObjectPath(root, key);
    await ensureRoot();
    await assertNoSymlinkedParents(root, path, key);
    return path;
  };

  const storage: FsStorage = {
    specificationVersion: 'v1',
    name: 'fs',
    capabilities: { presignedUrls: false, minPartSize: 1, maxParts: Number.MAX_SAFE_INTEGER },

    async beginUpload(key: string, _options?: UploadOptions): Promise<ObjectUpload> {
      await locate(key);
      const temporaryPath = join(uploadsDirectory, `${randomUUID()}.part`);
      let file: FileHandle;
      try {
        // Results hold query data: readable by the server's own user only.
        file = await open(temporaryPath, 'wx', 0o600);
      } catch (error) {
        throw storageFailed('start an upload', error);
      }
      return new FsUpload(key, temporaryPath, file, async () => {
        const path = await locate(key);
        await createParents(root, path, key);
        return path;
      });
    },

    async head(key: string): Promise<StoredObject | undefined> {
      const path = await locate(key);
      try {
        const stats = await lstat(path);
        if (stats.isSymbolicLink()) throw symlinkRefused(key);
        if (!stats.isFile()) return undefined;
        return { key, size: stats.size, createdAt: stats.mtimeMs };
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw mapError('read the metadata of', key, error);
      }
    },

    async read(key: string, range?: ByteRange): Promise<AsyncIterable<Uint8Array>> {
      if (range) assertValidRange(range);
      const path = await locate(key);
      let file: FileHandle;
      try {
        file = await open(path, openForRead);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkRefused(key);
        if (isMissing(error)) throw notFound(key);
        throw mapError('open', key, error);
      }
      try {
        const stats = await file.stat();
        if (!stats.isFile()) throw notFound(key);
        const start = Math.min(range?.start ?? 0, stats.size);
        const end = Math.min(range?.end ?? stats.size, stats.size);
        if (start >= end) {
          await file.close();
          return emptyStream();
        }
        // The stream owns the handle from here and closes it when consumed or destroyed.
        return file.createReadStream({ start, end: end - 1, highWaterMark: readHighWaterMark });
      } catch (error) {
        await file.close().catch(() => undefined);
        throw BackhaulError.isInstance(error) ? error : mapError('read', key, error);
      }
    },

    async delete(key: string): Promise<void> {
      const path = await locate(key);
      try {
        const stats = await lstat(path);
        if (!stats.isFile()) return;
        await unlink(path);
      } catch (error) {
        if (isMissing(error)) return;
        throw mapError('delete', key, error);
      }
    },

    async sweep(createdBefore: number): Promise<number> {
      await ensureRoot();
      let removed = await sweepDirectory(root, createdBefore, true);
      // Abandoned uploads: a live upload's file is touched by every part, so only a stalled
      // one grows old (its complete() then fails with storage-failed).
      removed += await sweepDirectory(uploadsDirectory, createdBefore, false);
      return removed;
    },

    sweepExpired(now = Date.now()) {
      return storage.sweep(now - retentionMs);
    },

    startSweeper(intervalMs = 60_000) {
      let running = false;
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        storage
          .sweepExpired()
          .catch((error: unknown) => options.onSweepError?.(error))
          .finally(() => {
            running = false;
          });
      }, intervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
  return storage;
}

type UploadState = 'open' | 'completed' | 'aborted';

class FsUpload implements ObjectUpload {
  #state: UploadState = 'open';
  /** Parts are appended in call order even if a caller does not await each one. */
  #writes: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(
    readonly key: string,
    private readonly temporaryPath: string,
    private readonly file: FileHandle,
    private readonly prepareDestination: () => Promise<string>,
  ) {}

  async writePart(bytes: Uint8Array): Promise<void> {
    this.#assertOpen('writePart');
    const write = this.#writes.then(async () => {
      let offset = 0;
      while (offset < bytes.length) {
        const { bytesWritten } = await this.file.write(bytes, offset, bytes.length - offset);
        offset += bytesWritten;
      }
    });
    this.#writes = write.catch(() => undefined);
    try {
      await write;
    } catch (error) {
      throw mapError('write a part of', this.key, error);
    }
  }

  async complete(): Promise<StoredObject> {
    this.#assertOpen('complete');
    this.#state = 'completed';
    try {
      await this.#writes;
      // Durable before visible: a crash after the rename must not leave a short file behind it.
      await this.file.sync();
      const stats = await this.file.stat();
      await this.#close();
      const path = await this.prepareDestination();
      await rename(this.temporaryPath, path);
      await syncDirectory(resolve(path, '..'));
      return { key: this.key, size: stats.size, createdAt: stats.mtimeMs };
    } catch (error) {
      await this.#discard();
      throw BackhaulError.isInstance(error) ? error : mapError('complete', this.key, error);
    }
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    await this.#writes;
    await this.#discard();
  }

  #assertOpen(operation: string): void {
    if (this.#state !== 'open') {
      throw new BackhaulError(
        'invalid-state',
        `${operation} on an upload of '${this.key}' that is ${this.#state}`,
      );
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.file.close();
  }

  async #discard(): Promise<void> {
    await this.#close().catch(() => undefined);
    await rm(this.temporaryPath, { force: true });
  }
}

/** mkdir -p, one level at a time, refusing to pass through a symbolic link planted meanwhile. */
async function createParents(root: string, path: string, key: string): Promise<void> {
  const parent = resolve(path, '..');
  if (parent === root) return;
  try {
    await mkdir(parent, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' || isMissing(error)) {
      throw new BackhaulError('bad-request', `Object key '${key}' runs through an existing object`);
    }
    throw error;
  }
  await assertNoSymlinkedParents(root, path, key);
}

async function sweepDirectory(directory: string, createdBefore: number, recurse: boolean): Promise<number> {
  let entries: Dirent[];
  try {
    entries = await readdir(directory, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) return 0;
    throw storageFailed('list objects to sweep', error);
  }
  let removed = 0;
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) {
      if (recurse && entry.name !== uploadsDirectoryName) {
        removed += await sweepDirectory(path, createdBefore, true);
      }
      continue;
    }
    // Symbolic links were never written by this storage: neither followed nor removed.
    if (!entry.isFile()) continue;
    try {
      const stats = await lstat(path);
      if (stats.mtimeMs >= createdBefore) continue;
      await unlink(path);
      removed++;
    } catch (error) {
      if (isMissing(error)) continue;
      throw storageFailed('sweep an object', error);
    }
  }
  return removed;
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function assertValidRange(range: ByteRange): void {
  const { start, end } = range;
  const validStart = Number.isSafeInteger(start) && start >= 0;
  const validEnd = end === undefined || (Number.isSafeInteger(end) && end >= start);
  if (!validStart || !validEnd) {
    throw new BackhaulError('bad-request', `Invalid byte range ${JSON.stringify(range)}`);
  }
}

async function* emptyStream(): AsyncIterable<Uint8Array> {}

function notFound(key: string): BackhaulError {
  return new BackhaulError('not-found', `No object '${key}'`);
}

function symlinkRefused(key: string): BackhaulError {
  return new BackhaulError('bad-request', `Object key '${key}' is a symbolic link`);
}

function mapError(operation: string, key: string, error: unknown): BackhaulError {
  if (BackhaulError.isInstance(error)) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST' || code === 'ENOTEMPTY') {
    return new BackhaulError('bad-request', `Object key '${key}' collides with a prefix of other objects`, {
      cause: error,
    });
  }
  return storageFailed(`${operation} '${key}'`, error);
}

function storageFailed(operation: string, error: unknown): BackhaulError {
  const reason = error instanceof Error ? error.message : String(error);
  return new BackhaulError('storage-failed', `Could not ${operation}: ${reason}`, { cause: error });
}
