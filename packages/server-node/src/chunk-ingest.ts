import type { IncomingMessage } from 'node:http';
import type { Logger } from '@backhaul/core';
import {
  BackhaulError,
  type Checksummer,
  type ChunkReceipt,
  type CodecRegistry,
  type Completion,
  chunkHeadersSchema,
  type FileHasher,
  headers,
  type ObjectStorage,
  type ObjectUpload,
  parseMessage,
  type StoredResult,
} from '@backhaul/core';
import { failpoint } from './failpoints.js';
import { discardBody, readBody, requireMediaType } from './http-io.js';

/**
 * Chunk ingest, the server's hot path (docs/protocol.md §6). One chunk's journey:
 *
 *   headers checked → body read under a cap → decoded under a cap → length and xxhash64 checked
 *   (all outside the lock, so chunks of one file decode in parallel) → under the per-file lock:
 *   idempotency and window checks → reorder buffer → the contiguous prefix is appended, in order,
 *   to the whole-file hasher and to a part buffer → a full part is written to storage and awaited
 *   (the storage's pace is the gateway's pace: backpressure without an unbounded queue).
 *
 * Memory per file is bounded: one part (max(minPartSize, chunkSize), 5 MiB on S3) plus at most
 * `chunkWindow` reordered chunks.
 */

type FileCompletion = Extract<Completion, { kind: 'file' }>;
export type StoredFile = Extract<StoredResult, { kind: 'file' }>;

/** Headroom over chunkSize for a compressed body that did not shrink (zstd/lz4 framing). */
export const CODEC_OVERHEAD_BYTES = 64 * 1024;

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
  receipt(commandId: string): ChunkReceipt;
  /** Whether chunk `index` would be inside the reorder window now (§6.2), without reading it. */
  inWindow(commandId: string, index: number): boolean;
  /** Commands whose file is being assembled here (chunks taken, not yet finished or aborted). */
  uploading(): string[];
  /** 6.4: verifies the whole file and makes it visible; on any mismatch aborts it and throws 422. */
  finish(commandId: string, key: string, completion: FileCompletion): Promise<StoredFile>;
  /** Discards a file in progress (command failed, expired, dead-lettered, or shutdown). */
  abort(commandId: string): Promise<void>;
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
  upload: ObjectUpload | undefined;
  status: 'open' | 'finished' | 'aborted';
  /** Checksum of every chunk accepted so far, by index: the idempotency record (§6.2). */
  checksums: Map<number, string>;
  /** Chunks past the first gap, waiting for it to fill. */
  reorder: Map<number, Uint8Array>;
  /** Chunks 0..contiguous-1 are appended to the hasher and the part buffer (or storage). */
  contiguous: number;
  bytesAppended: number;
  hasher: FileHasher;
  part: Buffer | undefined;
  partFill: number;
  /** Index of the one chunk shorter than chunkSize: it must be the last. */
  shortIndex: number | undefined;
  highestIndex: number;
  /** The tail of this file's promise chain: the per-file mutex. */
  tail: Promise<unknown>;
}

export function createChunkIngest(options: ChunkIngestOptions): ChunkIngest {
  const { storage, codecs, checksummer, chunkSize, chunkWindow } = options;
  const partSize = Math.max(storage.capabilities.minPartSize, chunkSize);
  const files = new Map<string, FileAssembly>();

  const assemblyFor = (commandId: string, key: string): FileAssembly => {
    let file = files.get(commandId);
    if (!file) {
      file = {
        commandId,
        key,
        upload: undefined,
        status: 'open',
        checksums: new Map(),
        reorder: new Map(),
        contiguous: 0,
        bytesAppended: 0,
        hasher: checksummer.stream(),
        part: undefined,
        partFill: 0,
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

  const writePart = async (file: FileAssembly, bytes: Uint8Array) => {
    file.upload ??= await storage.beginUpload(file.key, { contentType: 'application/vnd.apache.parquet' });
    await file.upload.writePart(bytes);
    failpoint('mid-assembly'); // a part is in storage, the file is not complete
  };

  /** Appends the next in-order chunk to the hasher and the part buffer; writes a part once full. */
  const append = async (file: FileAssembly, bytes: Uint8Array) => {
    file.hasher.update(bytes);
    file.bytesAppended += bytes.length;
    if (file.partFill === 0 && bytes.length === partSize) {
      // A chunk that is exactly one part goes to storage as is: no copy.
      await writePart(file, bytes);
      return;
    }
    let offset = 0;
    while (offset < bytes.length) {
      // A fresh buffer per part: storage may hold the bytes it was given, so none is reused.
      file.part ??= Buffer.allocUnsafe(partSize);
      const take = Math.min(partSize - file.partFill, bytes.length - offset);
      file.part.set(bytes.subarray(offset, offset + take), file.partFill);
      file.partFill += take;
      offset += take;
      if (file.partFill === partSize) {
        const full = file.part;
        file.part = undefined;
        file.partFill = 0;
        await writePart(file, full);
      }
    }
  };

  const refuseClosed = (file: FileAssembly) =>
    new BackhaulError(
      'invalid-state',
      `The file ${file.key} is ${file.status === 'aborted' ? 'aborted' : 'complete'}`,
    );

  const outOfWindow = (index: number, contiguous: number) =>
    // §6.2: "An index more than hello.chunkWindow chunks past the first missing chunk: 409 (retryable)".
    new BackhaulError(
      'chunk-out-of-window',
      `Chunk ${index} is too far ahead: chunks from ${contiguous} to ${contiguous + chunkWindow - 1} are accepted now`,
      { retryAfterMs: 1000, details: { contiguous, chunkWindow } },
    );

  /** The authoritative checks and the state change; runs under the file's lock. */
  const accept = async (file: FileAssembly, index: number, checksum: string, bytes: Uint8Array) => {
    if (file.status !== 'open') throw refuseClosed(file);
    const stored = file.checksums.get(index);
    if (stored !== undefined) {
      // §6.2: the same index with the same checksum is a success that changes nothing; a
      // different checksum means the gateway is sending a different file.
      if (stored === checksum) return 'duplicate' as const;
      throw new BackhaulError('chunk-conflict', `Chunk ${index} is already stored with checksum ${stored}`, {
        details: { index, stored },
      });
    }
    if (index >= file.contiguous + chunkWindow) throw outOfWindow(index, file.contiguous);
    // §6.1: only the last chunk may be shorter than chunkSize.
    const short = bytes.length < chunkSize;
    if (short && file.shortIndex !== undefined) {
      throw new BackhaulError('chunk-conflict', `Chunk ${file.shortIndex} is already the short last chunk`);
    }
    if (short && file.highestIndex > index) {
      throw new BackhaulError(
        'chunk-conflict',
        `Chunk ${index} is short but chunk ${file.highestIndex} follows it`,
      );
    }
    if (!short && file.shortIndex !== undefined && index > file.shortIndex) {
      throw new BackhaulError(
        'chunk-conflict',
        `Chunk ${index} follows the short last chunk ${file.shortIndex}`,
      );
    }

    file.checksums.set(index, checksum);
    if (short) file.shortIndex = index;
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
    file.part = undefined;
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
      await file.upload?.abort();
    } catch (error) {
      options.logger.warn('aborting an upload failed', { key: file.key, error: String(error) });
    }
  };

  const readChunkHeaders = (req: IncomingMessage) => {
    const single = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    return parseMessage(
      chunkHeadersSchema,
      {
        codec: single(headers.codec),
        checksum: single(headers.checksum),
        rawLength: single(headers.rawLength),
      },
      'chunk headers',
    );
  };

  return {
    async putChunk(commandId, key, index, req) {
      // §6.1: a chunk is `application/octet-stream`; anything else is refused before a byte is read.
      requireMediaType(req, ['application/octet-stream']);
      const { codec: codecName, checksum, rawLength } = readChunkHeaders(req);
      // §6.2: too large is decided before the output is allocated, and before the body is read.
      if (rawLength > chunkSize) {
        throw new BackhaulError(
          'payload-too-large',
          `A chunk decodes to at most ${chunkSize} bytes, not ${rawLength}`,
        );
      }
      const codec = codecs.get(codecName); // 415 unsupported-codec
      const file = assemblyFor(commandId, key);
      if (file.status !== 'open') throw refuseClosed(file);

      // Cheap answers that need no body: a retry of a stored chunk, or one far ahead.
      const stored = file.checksums.get(index);
      if (stored === checksum) {
        await discardBody(req, chunkSize + CODEC_OVERHEAD_BYTES);
        return 'duplicate';
      }
      if (stored === undefined && index >= file.contiguous + chunkWindow)
        throw outOfWindow(index, file.contiguous);

      const maxBody = codec.name === 'identity' ? chunkSize : chunkSize + CODEC_OVERHEAD_BYTES;
      const body = await readBody(req, maxBody);
      let decoded: Uint8Array;
      try {
        decoded = await codec.decode(body, chunkSize);
      } catch (error) {
        if (BackhaulError.isInstance(error)) throw error;
        throw new BackhaulError('corrupt-data', `Chunk ${index} is not a valid ${codec.name} frame`, {
          cause: error,
        });
      }
      // §6.2: decoded bytes whose length or checksum differ from the headers: 422, nothing stored.
      if (decoded.length !== rawLength) {
        throw new BackhaulError(
          'checksum-mismatch',
          `Chunk ${index}: decoded ${decoded.length} bytes, the header says ${rawLength}`,
          { details: { index } },
        );
      }
      const actual = checksummer.digest(decoded);
      if (actual !== checksum) {
        throw new BackhaulError('checksum-mismatch', `Chunk ${index}: expected ${checksum}, got ${actual}`, {
          details: { index },
        });
      }
      return serialize(file, () => accept(file, index, checksum, decoded));
    },

    receipt(commandId) {
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
        if (file.status !== 'open') throw refuseClosed(file);
        // §6.4: all chunks present, size and checksum as stored, before the result becomes visible.
        let problem: BackhaulError | undefined;
        const extra = [...file.checksums.keys()].filter((index) => index >= completion.chunkCount);
        if (file.contiguous < completion.chunkCount) {
          problem = new BackhaulError(
            'file-incomplete',
            `Chunks 0..${completion.chunkCount - 1} were announced; chunk ${file.contiguous} is missing`,
            {
              retryable: false,
              details: { contiguous: file.contiguous, buffered: [...file.reorder.keys()] },
            },
          );
        } else if (extra.length > 0) {
          problem = new BackhaulError(
            'file-incomplete',
            `Chunks past the announced ${completion.chunkCount} were stored`,
            {
              retryable: false,
            },
          );
        } else if (file.bytesAppended !== completion.size) {
          problem = new BackhaulError(
            'file-incomplete',
            `The file was announced as ${completion.size} bytes; ${file.bytesAppended} bytes were received`,
            { retryable: false },
          );
        } else {
          const digest = file.hasher.digest();
          if (digest !== completion.checksum) {
            problem = new BackhaulError(
              'checksum-mismatch',
              `The whole file: expected ${completion.checksum}, the stored bytes hash to ${digest}`,
              { retryable: false },
            );
          }
        }
        if (problem) {
          await discard(file);
          throw problem;
        }
        try {
          if (file.part && file.partFill > 0) await writePart(file, file.part.subarray(0, file.partFill));
          file.upload ??= await storage.beginUpload(file.key, {
            contentType: 'application/vnd.apache.parquet',
          });
          await file.upload.complete();
        } catch (error) {
          await discard(file);
          throw storageFailed(`Completing ${file.key}`, error);
        }
        file.status = 'finished';
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
