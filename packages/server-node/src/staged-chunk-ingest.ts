import {
  BackhaulError,
  type Checksummer,
  type ChunkEntry,
  type CodecRegistry,
  type Logger,
  type ObjectStorage,
  type UploadLedger,
} from '@backhaul/core';
import { readChunkHead, readVerifiedChunk } from './chunk-body.js';
import type { ChunkIngest, StoredFile } from './chunk-ingest.js';
import { missingFromFile, refuseChunk, refuseClosed, wrongChecksum } from './chunk-refusals.js';
import { createPartWriter } from './part-writer.js';

/**
 * Chunk ingest shared by server instances (docs/cluster.md "Shared uploads"): any chunk PUT and
 * any completion of a file may reach any instance. One chunk's journey:
 *
 *   headers checked → body read, decoded and verified (chunk-body.ts, as in one process) → the
 *   decoded bytes stored as an object of their own, `staging/<commandId>/<index>-<checksum>` →
 *   the receipt recorded in the ledger by compare-and-set (the §6.2 rules) → 201.
 *
 * A 201 therefore means the chunk is in shared storage and its receipt in the shared ledger: an
 * instance that dies after it loses nothing, and the gateway never sends that chunk again. The
 * completion claims the upload in the ledger under a lease, streams the staged chunks in order
 * through the whole-file hasher into the final object (one multipart upload), verifies it against
 * the completion, records the result and deletes the staged chunks. A completion retried on
 * another instance while the claim is held is answered 503 with Retry-After; once the lease runs
 * out (the holder died) it takes the assembly over; once done, it gets the recorded result.
 *
 * The price: each file's bytes are written twice and read once more, and every chunk costs a
 * storage write and a ledger round trip (docs/benchmarks.md).
 */

export interface StagedChunkIngestOptions {
  storage: ObjectStorage;
  ledger: UploadLedger;
  codecs: CodecRegistry;
  checksummer: Checksummer;
  chunkSize: number;
  chunkWindow: number;
  logger: Logger;
  /** Names this instance in completion claims; unique per process. */
  instanceId: string;
  /** How long a completion claim holds without renewal; default 30 000. */
  leaseMs?: number;
}

export function stagingKey(commandId: string, index: number, checksum: string): string {
  return `staging/${commandId}/${index}-${checksum}`;
}

const DEFAULT_LEASE_MS = 30_000;
/** Staged chunks read ahead of the one being appended, so storage latency overlaps the hashing. */
const READ_AHEAD = 4;
/** Staged chunks deleted at once after a completion or abort. */
const DELETE_CONCURRENCY = 8;

export function createStagedChunkIngest(options: StagedChunkIngestOptions): ChunkIngest {
  const { storage, ledger, checksummer, chunkSize, chunkWindow, logger, instanceId } = options;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const partSize = Math.max(storage.capabilities.minPartSize, chunkSize);
  const rules = { chunkSize, chunkWindow };

  const storageFailed = (what: string, error: unknown) =>
    BackhaulError.isInstance(error)
      ? error
      : new BackhaulError('storage-failed', `${what} failed`, { cause: error });

  const stage = async (key: string, bytes: Uint8Array) => {
    try {
      const upload = await storage.beginUpload(key, { contentType: 'application/octet-stream' });
      await upload.writePart(bytes);
      await upload.complete();
    } catch (error) {
      throw storageFailed(`Staging ${key}`, error);
    }
  };

  const readStaged = async (key: string): Promise<Uint8Array> => {
    const pieces: Uint8Array[] = [];
    for await (const piece of await storage.read(key)) pieces.push(piece);
    return pieces.length === 1 ? (pieces[0] as Uint8Array) : Buffer.concat(pieces);
  };

  /** Best effort: a staged chunk left behind is removed by the storage's retention sweep. */
  const deleteStaged = async (commandId: string, chunks: Iterable<ChunkEntry>) => {
    const keys = [...chunks].map((chunk) => stagingKey(commandId, chunk.index, chunk.checksum));
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const key = keys[next++] as string;
        await storage
          .delete(key)
          .catch((error) => logger.warn('deleting a staged chunk failed', { key, error: String(error) }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker));
  };

  /** Ends the upload in the ledger (no instance assembles it after this) and drops its chunks. */
  const discard = async (commandId: string) => {
    const record = await ledger.abort(commandId);
    if (record.status === 'aborted') await deleteStaged(commandId, record.chunks.values());
  };

  /**
   * Streams chunks 0..count-1 in order, each checked against its receipt: a staged object that
   * is missing or holds other bytes (a sweep that ran too early, a bucket changed by hand) fails
   * the file instead of making a wrong one visible.
   */
  async function* stagedChunks(commandId: string, chunks: Map<number, ChunkEntry>, count: number) {
    const entry = (index: number) => chunks.get(index) as ChunkEntry;
    const reads: Promise<Uint8Array>[] = [];
    const startRead = (index: number) => {
      const read = readStaged(stagingKey(commandId, index, entry(index).checksum));
      read.catch(() => undefined); // awaited in order below; a later one may fail first
      reads[index] = read;
    };
    for (let index = 0; index < Math.min(READ_AHEAD, count); index++) startRead(index);
    for (let index = 0; index < count; index++) {
      let bytes: Uint8Array;
      try {
        bytes = await (reads[index] as Promise<Uint8Array>);
      } catch (error) {
        throw new BackhaulError('file-incomplete', `Staged chunk ${index} could not be read`, {
          retryable: false,
          cause: error,
        });
      }
      delete reads[index];
      if (index + READ_AHEAD < count) startRead(index + READ_AHEAD);
      const expected = entry(index);
      if (bytes.length !== expected.size || checksummer.digest(bytes) !== expected.checksum) {
        throw new BackhaulError(
          'checksum-mismatch',
          `Staged chunk ${index} does not hold the bytes received`,
          {
            retryable: false,
          },
        );
      }
      yield bytes;
    }
  }

  /** Runs under this instance's claim; returns the stored file or throws. */
  const assemble = async (
    commandId: string,
    key: string,
    completion: Parameters<ChunkIngest['finish']>[2],
  ) => {
    const record = await ledger.read(commandId);
    let bytes = 0;
    for (const chunk of record.chunks.values()) bytes += chunk.size;
    const missing = missingFromFile(completion, {
      contiguous: record.contiguous,
      indices: record.chunks.keys(),
      bytes,
    });
    if (missing) {
      await discard(commandId);
      throw missing;
    }
    const writer = createPartWriter(storage, key, partSize);
    const hasher = checksummer.stream();
    let renewedAt = Date.now();
    try {
      for await (const chunk of stagedChunks(commandId, record.chunks, completion.chunkCount)) {
        hasher.update(chunk);
        await writer.append(chunk);
        if (Date.now() - renewedAt > leaseMs / 3) {
          if (!(await ledger.renewClaim(commandId, instanceId, leaseMs))) {
            throw new BackhaulError(
              'service-unavailable',
              `Another server instance took over completing ${key}`,
              {
                retryAfterMs: 1000,
              },
            );
          }
          renewedAt = Date.now();
        }
      }
      const wrong = wrongChecksum(completion, hasher.digest());
      if (wrong) throw wrong;
      await writer.complete();
    } catch (error) {
      await writer
        .abort()
        .catch((failure) => logger.warn('aborting an assembly failed', { key, error: String(failure) }));
      if (BackhaulError.isInstance(error) && !error.retryable) {
        await discard(commandId);
        throw error;
      }
      // Storage or ledger trouble: the staged chunks are intact, so a retried completion (here or
      // on another instance) starts the assembly again.
      await ledger.releaseClaim(commandId, instanceId).catch(() => undefined);
      throw storageFailed(`Completing ${key}`, error);
    }
    const stored: StoredFile = { ...completion, key };
    if (!(await ledger.complete(commandId, instanceId, JSON.stringify(stored)))) {
      // This instance was too slow: another one took the claim over and writes the same bytes
      // to the same key. Its record is the one kept.
      logger.warn('another instance completed the file meanwhile', { key });
    }
    await deleteStaged(commandId, record.chunks.values());
    return stored;
  };

  return {
    async putChunk(commandId, key, index, req) {
      const head = readChunkHead(req, options);
      const decoded = await readVerifiedChunk(req, index, head, options);
      // Durable in shared storage before the receipt, and the receipt before the 201.
      await stage(stagingKey(commandId, index, head.checksum), decoded);
      const outcome = await ledger.recordChunk(
        commandId,
        { index, checksum: head.checksum, size: decoded.length },
        rules,
      );
      // A refused chunk's staged object is left to the retention sweep: another instance may be
      // writing the same index and checksum to the same key, and deleting it could lose that one.
      switch (outcome.kind) {
        case 'recorded':
          return 'stored';
        case 'duplicate':
          return 'duplicate';
        case 'closed':
          throw refuseClosed(key, outcome.status);
        default:
          throw refuseChunk(outcome, index, chunkWindow);
      }
    },

    async receipt(commandId) {
      const { contiguous, chunks } = await ledger.read(commandId);
      const sorted = [...chunks.values()].sort((a, b) => a.index - b.index);
      return {
        contiguous,
        buffered: sorted.filter((chunk) => chunk.index > contiguous).map((chunk) => chunk.index),
        checksums: Object.fromEntries(sorted.map((chunk) => [String(chunk.index), chunk.checksum])),
      };
    },

    // The ledger judges the window when the chunk is recorded, atomically across instances;
    // asking it here too would cost every chunk another round trip.
    inWindow: () => true,

    // No instance holds an upload: a gateway that reconnects anywhere goes on with its own.
    uploading: () => [],

    async finish(commandId, key, completion) {
      const claim = await ledger.claimCompletion(commandId, instanceId, leaseMs);
      switch (claim.kind) {
        case 'completed':
          return JSON.parse(claim.result) as StoredFile;
        case 'aborted':
          throw refuseClosed(key, 'aborted');
        case 'busy':
          throw new BackhaulError('service-unavailable', `Another server instance is completing ${key}`, {
            retryAfterMs: Math.min(Math.max(claim.retryAfterMs, 100), 5000),
          });
        case 'claimed':
          return assemble(commandId, key, completion);
      }
    },

    abort: discard,

    // Shutdown leaves shared uploads alone: the gateway goes on with another instance.
    async abortAll() {},
  };
}
