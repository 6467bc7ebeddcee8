import type { IncomingMessage } from 'node:http';
import {
  BackhaulError,
  type Checksummer,
  type ChunkReceipt,
  type CodecRegistry,
  type Completion,
  type FileHasher,
  judgeChunk,
  type Logger,
  type ObjectStorage,
  type StoredResult,
} from '@backhaul/core';
import { readChunkHead, readVerifiedChunk, skipChunkBody } from './chunk-body.js';
import { missingFromFile, refuseChunk, refuseClosed, wrongChecksum } from './chunk-refusals.js';
import { createPartWriter, type PartWriter } from './part-writer.js';

/**
 * Chunk ingest in one process, the server's hot path (docs/protocol.md §6). One chunk's journey:
 *
 *   headers checked → body read under a cap → decoded under a cap → length and xxhash64 checked
 *   (all outside the lock, so chunks of one file decode in parallel) → under the per-file lock:
 *   idempotency and window checks → reorder buffer → the contiguous prefix is appended, in order,
 *   to the whole-file hasher and to a part buffer → a full part is written to storage and awaited
 *   (the storage's pace is the gateway's pace: backpressure without an unbounded queue).
 *
 * Memory per file is bounded: one part (max(minPartSize, chunkSize), 5 MiB on S3) plus at most
 * `chunkWindow` reordered chunks. Every chunk of a file must reach this process; servers that
 * share an upload ledger use the staged ingest instead (staged-chunk-ingest.ts).
 */

type FileCompletion = Extract<Completion, { kind: 'file' }>;
export type StoredFile = Extract<StoredResult, { kind: 'file' }>;

export interface ChunkIngestOptions {
  storage: ObjectStorage;
  codecs: CodecRegistry;
  checksummer: Checksummer;
  chunkSize: number;
  chunkWindow: number;
  logger: Logger;
  /** Called when storage failed mid-upload: the file can no longer be assembled. */
  onBroken(commandId: string, error: BackhaulError): void;
}

export interface ChunkIngest {
  /** 5.4: stores chunk `index` of a command's file; `stored` → 201, `duplicate` → 200. */
  putChunk(
    commandId: string,
    key: string,
    index: number,
    req: IncomingMessage,
  ): Promise<'stored' | 'duplicate'>;
  /** 6.3 */
  receipt(commandId: string): Promise<ChunkReceipt>;
  /** Whether chunk `index` would be inside the reorder window now (§6.2), without reading it. */
  inWindow(commandId: string, index: number): boolean;
  /** Commands whose file is being assembled here (chunks taken, not yet finished or aborted). */
  uploading(): string[];
  /** 6.4: verifies the whole file and makes it visible; on any mismatch aborts it and throws 422. */
  finish(commandId: string, key: string, completion: FileCompletion): Promise<StoredFile>;
  /** Discards a file in progress (command failed, expired, dead-lettered). */
  abort(commandId: string): Promise<void>;
  /** Server shutdown: discards what only this process could finish. */
  abortAll(): Promise<void>;
}

/** How long a finished or aborted file is remembered, to refuse chunks that race with its end. */
const RETIRED_FILE_MS = 10 * 60_000;

export function resultKey(gatewayId: string, commandId: string): string {
  return `results/${gatewayId}/${commandId}.parquet`;
}

/** The state of one file being assembled. Fields are touched only inside `serialize`. */
interface FileAssembly {
  commandId: string;
  key: string;
  parts: PartWriter;
  status: 'open' | 'completed' | 'aborted';
  /** Checksum of every chunk accepted so far, by index: the idempotency record (§6.2). */
  checksums: Map<number, string>;
  /** Chunks past the first gap, waiting for it to fill. */
  reorder: Map<number, Uint8Array>;
  /** Chunks 0..contiguous-1 are appended to the hasher and the part writer. */
  contiguous: number;
  bytesAppended: number;
  hasher: FileHasher;
  /** Index of the one chunk shorter than chunkSize: it must be the last. */
  shortIndex: number | undefined;
  highestIndex: number;
  /** The tail of this file's promise chain: the per-file mutex. */
  tail: Promise<unknown>;
}

export function createChunkIngest(options: ChunkIngestOptions): ChunkIngest {
  const { storage, checksummer, chunkSize, chunkWindow } = options;
  const partSize = Math.max(storage.capabilities.minPartSize, chunkSize);
  const files = new Map<string, FileAssembly>();

  const assemblyFor = (commandId: string, key: string): FileAssembly => {
    let file = files.get(commandId);
    if (!file) {
      file = {
        commandId,
        key,
        parts: createPartWriter(storage, key, partSize),
        status: 'open',
        checksums: new Map(),
        reorder: new Map(),
        contiguous: 0,
        bytesAppended: 0,
        hasher: checksummer.stream(),
        shortIndex: undefined,
        highestIndex: -1,
        tail: Promise.resolve(),
      };
      files.set(commandId, file);
    }
    return file;
  };

  /** Runs `step` after every earlier step on this file: a promise-chain mutex per file. */
  const serialize = <T>(file: FileAssembly, step: () => Promise<T>): Promise<T> => {
    const run = file.tail.then(step, step);
    file.tail = run.catch(() => undefined);
    return run;
  };

  const storageFailed = (what: string, error: unknown) =>
    BackhaulError.isInstance(error)
      ? error
      : new BackhaulError('storage-failed', `${what} failed`, { cause: error });

  /** Appends the next in-order chunk to the hasher and the part writer. */
  const append = async (file: FileAssembly, bytes: Uint8Array) => {
    file.hasher.update(bytes);
    file.bytesAppended += bytes.length;
    await file.parts.append(bytes);
  };

  const layoutOf = (file: FileAssembly) => ({
    stored: (index: number) => file.checksums.get(index),
    contiguous: file.contiguous,
    shortIndex: file.shortIndex,
    highestIndex: file.highestIndex,
  });

  /** The authoritative checks and the state change; runs under the file's lock. */
  const accept = async (file: FileAssembly, index: number, checksum: string, bytes: Uint8Array) => {
    if (file.status !== 'open') throw refuseClosed(file.key, file.status);
    const outcome = judgeChunk(
      layoutOf(file),
      { index, checksum, size: bytes.length },
      { chunkSize, chunkWindow },
    );
    if (outcome.kind === 'duplicate') return 'duplicate' as const;
    if (outcome.kind !== 'recorded') throw refuseChunk(outcome, index, chunkWindow);

    file.checksums.set(index, checksum);
    if (bytes.length < chunkSize) file.shortIndex = index;
    file.highestIndex = Math.max(file.highestIndex, index);
    if (index !== file.contiguous) {
      file.reorder.set(index, bytes);
      return 'stored' as const;
    }
    try {
      await append(file, bytes);
      file.contiguous++;
      for (let next = file.reorder.get(file.contiguous); next; next = file.reorder.get(file.contiguous)) {
        file.reorder.delete(file.contiguous);
        await append(file, next);
        file.contiguous++;
      }
    } catch (error) {
      // The hasher and the part stream moved on while storage lost bytes: this file is beyond
      // repair. Fail it loudly rather than ever hand out a URL to a file with a hole.
      const failure = storageFailed(`Storing chunk ${index} of ${file.key}`, error);
      await discard(file);
      options.onBroken(file.commandId, failure);
      throw failure;
    }
    return 'stored' as const;
  };

  /**
   * A finished or aborted file stays in the map for a while, stripped of its buffers, so a chunk
   * racing with the end is refused instead of starting a new, orphaned upload.
   */
  const retire = (file: FileAssembly) => {
    file.reorder.clear();
    const timer = setTimeout(() => {
      if (files.get(file.commandId) === file) files.delete(file.commandId);
    }, RETIRED_FILE_MS);
    timer.unref();
  };

  /** Drops everything of a file; call under its lock. */
  const discard = async (file: FileAssembly) => {
    if (file.status === 'open') file.status = 'aborted';
    retire(file);
    try {
      await file.parts.abort();
    } catch (error) {
      options.logger.warn('aborting an upload failed', { key: file.key, error: String(error) });
    }
  };

  return {
    async putChunk(commandId, key, index, req) {
      const head = readChunkHead(req, options);
      const file = assemblyFor(commandId, key);
      if (file.status !== 'open') throw refuseClosed(file.key, file.status);

      // Cheap answers that need no body: a retry of a stored chunk, or one far ahead.
      const stored = file.checksums.get(index);
      if (stored === head.checksum) {
        await skipChunkBody(req, options);
        return 'duplicate';
      }
      if (stored === undefined && index >= file.contiguous + chunkWindow)
        throw refuseChunk({ kind: 'out-of-window', contiguous: file.contiguous }, index, chunkWindow);

      const decoded = await readVerifiedChunk(req, index, head, options);
      return serialize(file, () => accept(file, index, head.checksum, decoded));
    },

    async receipt(commandId) {
      const file = files.get(commandId);
      if (!file) return { contiguous: 0, buffered: [], checksums: {} };
      return {
        contiguous: file.contiguous,
        buffered: [...file.reorder.keys()].sort((a, b) => a - b),
        checksums: Object.fromEntries(
          [...file.checksums].map(([index, checksum]) => [String(index), checksum]),
        ),
      };
    },

    inWindow(commandId, index) {
      return index < (files.get(commandId)?.contiguous ?? 0) + chunkWindow;
    },

    uploading() {
      return [...files.values()].filter((file) => file.status === 'open').map((file) => file.commandId);
    },

    async finish(commandId, key, completion) {
      const file = assemblyFor(commandId, key);
      return serialize(file, async () => {
        if (file.status !== 'open') throw refuseClosed(file.key, file.status);
        // §6.4: all chunks present, size and checksum as stored, before the result becomes visible.
        const problem =
          missingFromFile(completion, {
            contiguous: file.contiguous,
            indices: file.checksums.keys(),
            bytes: file.bytesAppended,
          }) ?? wrongChecksum(completion, file.hasher.digest());
        if (problem) {
          await discard(file);
          throw problem;
        }
        try {
          await file.parts.complete();
        } catch (error) {
          await discard(file);
          throw storageFailed(`Completing ${file.key}`, error);
        }
        file.status = 'completed';
        retire(file);
        return { ...completion, key: file.key };
      });
    },

    async abort(commandId) {
      const file = files.get(commandId);
      if (!file) return;
      // Refuse new chunks at once; the upload itself is discarded after the step in progress.
      if (file.status !== 'open') return;
      file.status = 'aborted';
      await serialize(file, () => discard(file));
    },

    async abortAll() {
      await Promise.all([...files.keys()].map((id) => this.abort(id)));
    },
  };
}
