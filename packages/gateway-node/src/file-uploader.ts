import { setMaxListeners } from 'node:events';
import type { Logger } from '@backhaul/core';
import {
  type Checksummer,
  type Codec,
  type Column,
  type Completion,
  type Hello,
  type RetryPolicy,
  rechunk,
  type TraceContext,
  withRetry,
  withSpan,
} from '@backhaul/core';
import { AdaptiveCodec, type CodecChoice } from './codec-choice.js';
import { GoodputMeter } from './goodput.js';
import { encodeBatchesAsParquet, type FileBatch, type ParquetFileCompression } from './parquet-encoding.js';
import type { ProgressState } from './progress.js';
import { describeError, type ServerApi } from './server-api.js';
import { TRACER_NAME } from './tracer-name.js';
import { UploadWindow } from './upload-window.js';

export interface FileUploadOptions {
  api: ServerApi;
  commandId: string;
  columns: readonly Column[];
  batches: AsyncIterable<FileBatch>;
  /** Page compression of the Parquet file (default zstd). */
  parquetCompression?: ParquetFileCompression;
  hello: Hello;
  /** The chunk codec; with `autoCodec`, the candidate the file's first chunk is tried with. */
  codec: Codec;
  /**
   * `preferredCodec: 'auto'`: every 8th chunk is a sample encoded with `codec`, and the chunks up to
   * the next sample keep `codec` only if it saved at least `minSaving` (default 10 %) and, once this
   * upload has measured the link's goodput, the saved bytes' wire time exceeds `linkFactor` × the
   * sample's encode time (`decideCodec`); else they go as `identity`. `onChoice` gets the file's
   * summary once every chunk is uploaded.
   */
  autoCodec?: {
    identity: Codec;
    minSaving?: number;
    interval?: number;
    linkFactor?: number;
    onChoice?: (choice: CodecChoice) => void;
  };
  checksummer: Checksummer;
  chunksInFlight: number;
  retry: RetryPolicy;
  progress: ProgressState;
  logger: Logger;
  signal: AbortSignal;
  /**
   * Chunks the server already holds (§6.3), by index, with the checksum it stored when it said
   * so. Such a chunk is skipped on a resumed upload if its checksum is the one produced now; one
   * that differs is sent, and the server refuses it (409 chunk-conflict) rather than mix two files.
   */
  alreadyStored?: ReadonlyMap<number, string | undefined>;
  /** The span the upload belongs to: its `backhaul.upload` span is a child, and every chunk PUT carries that (§5.4). */
  trace?: TraceContext;
}

/** The upload half of the file flow, for bytes that are already a file (or any byte stream). */
export interface ByteUploadOptions extends Omit<FileUploadOptions, 'columns' | 'batches'> {
  /** The file's bytes in order, in pieces of any size; they are re-cut into `hello.chunkSize` chunks. */
  bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Rows the file holds, read once the bytes are exhausted (default 0). */
  rowCount?: () => number;
}

type FileCompletion = Extract<Completion, { kind: 'file' }>;

/**
 * The file flow of docs/protocol.md §6, end to end in one place:
 *
 *   cursor batches → ParquetWriter → rechunk(chunkSize) → xxhash64 of the raw chunk
 *     → codec.encode → PUT …/chunks/{i} (≤ chunksInFlight at once, each retried) → complete
 *
 * Memory stays bounded: the encoder only pulls the next batch when a window slot is free, so at
 * most `chunksInFlight` chunks (raw + encoded) plus one Parquet row group are held at any time.
 */
export async function uploadFile(options: FileUploadOptions): Promise<FileCompletion> {
  const { progress } = options;
  let rowCount = 0;
  progress.stage = 'encoding';
  const parquet = encodeBatchesAsParquet(
    options.columns,
    options.batches,
    (rows) => {
      rowCount += rows;
      progress.rows = rowCount;
    },
    options.parquetCompression,
  );
  return uploadBytes({ ...options, bytes: parquet, rowCount: () => rowCount });
}

/**
 * bytes → rechunk(chunkSize) → xxhash64 → codec.encode → PUT …/chunks/{i} (windowed, retried),
 * returning the completion to send. `uploadFile` is this fed by the Parquet encoder; it is also
 * how a file that already exists is sent (and what the benchmarks time).
 */
export function uploadBytes(options: ByteUploadOptions): Promise<FileCompletion> {
  const attributes = {
    'backhaul.command.id': options.commandId,
    'backhaul.chunk.size': options.hello.chunkSize,
  };
  return withSpan(
    TRACER_NAME,
    'backhaul.upload',
    options.trace,
    { kind: 'client', attributes },
    async (span) => {
      const completion = await sendChunks(options, span.trace);
      span.setAttributes({
        'backhaul.file.size': completion.size,
        'backhaul.chunk.count': completion.chunkCount,
        'backhaul.row.count': completion.rowCount,
      });
      return completion;
    },
  );
}

/** The chunk loop of `uploadBytes`; every PUT names the upload's span (`trace`). */
async function sendChunks(options: ByteUploadOptions, trace: TraceContext): Promise<FileCompletion> {
  const { api, commandId, hello, codec, checksummer, retry, progress, logger } = options;
  // More chunks in flight than the server's reorder window only earns 409 chunk-out-of-window (§6.2).
  const windowSize = Math.max(1, Math.min(options.chunksInFlight, hello.chunkWindow));
  const window = new UploadWindow(windowSize, hello.chunkWindow);
  // The first fatal chunk error stops the encoder and cancels the other requests.
  const uploads = new AbortController();
  // Every request in the window listens on this signal: more than Node's default of 10 is expected.
  setMaxListeners(0, uploads.signal);
  const stopUploads = () => uploads.abort(options.signal.reason);
  options.signal.addEventListener('abort', stopUploads, { once: true });

  const fileHash = checksummer.stream();
  let size = 0;
  let chunkCount = 0;
  let failure: unknown;
  const inFlight = new Set<Promise<void>>();

  // `auto` weighs the link by this upload's own PUTs: bytes on the wire (what a narrow link carries,
  // so what compressing saves) answered per second.
  const goodput = options.autoCodec && new GoodputMeter(windowSize);
  const adaptive =
    options.autoCodec &&
    new AdaptiveCodec({ candidate: codec, goodput: () => goodput?.estimate(), ...options.autoCodec });
  const encodeChunk = async (index: number, raw: Uint8Array): Promise<{ body: Uint8Array; codec: string }> =>
    adaptive ? adaptive.encode(index, raw) : { body: await codec.encode(raw), codec: codec.name };

  const uploadChunk = async (index: number, raw: Uint8Array, checksum: string): Promise<void> => {
    try {
      // Encoding runs here, inside the window, so a native codec can work on several chunks at once.
      const { body, codec: codecName } = await encodeChunk(index, raw);
      const chunk = { index, body, codec: codecName, checksum, rawLength: raw.length };
      goodput?.sending();
      await withRetry(retry, () => api.putChunk(commandId, chunk, uploads.signal, trace), {
        signal: uploads.signal,
        // §6.2: 422 checksum-mismatch and 409 chunk-out-of-window say "send it again", and the
        // problem body marks them retryable; 409 chunk-conflict is not, so it ends the upload.
        onRetry: (error, attempt, delayMs) =>
          logger.warn('chunk upload failed, retrying', {
            commandId,
            index,
            attempt,
            delayMs,
            error: describeError(error),
          }),
      });
      goodput?.record(body.length);
      progress.bytes += raw.length;
    } catch (error) {
      if (failure === undefined) {
        failure = error;
        uploads.abort(error);
      }
    } finally {
      window.release(index);
    }
  };

  try {
    for await (const raw of rechunk(options.bytes, hello.chunkSize)) {
      if (failure !== undefined || uploads.signal.aborted) break;
      progress.stage = 'uploading';
      const index = chunkCount++;
      size += raw.length;
      // The whole-file hash must see chunks in file order, so it is fed here, not in the upload.
      fileHash.update(raw);
      const checksum = checksummer.digest(raw);
      if (options.alreadyStored?.has(index)) {
        const stored = options.alreadyStored.get(index);
        if (stored === undefined || stored === checksum) {
          progress.bytes += raw.length;
          continue;
        }
      }
      // Backpressure: the encoder waits here while the window is full or this chunk is too far ahead.
      await window.acquire(index);
      if (failure !== undefined || uploads.signal.aborted) {
        window.release(index);
        break;
      }
      const task = uploadChunk(index, raw, checksum).finally(() => inFlight.delete(task));
      inFlight.add(task);
    }
  } catch (error) {
    // The cursor or the Parquet writer failed: cancel what is in flight and report that error.
    failure ??= error;
    uploads.abort(error);
  } finally {
    await Promise.all(inFlight);
    options.signal.removeEventListener('abort', stopUploads);
  }
  if (failure !== undefined) throw failure;
  if (adaptive) options.autoCodec?.onChoice?.(adaptive.choice());

  // §6.4 The completion states what was produced, so the server can check every chunk is there.
  return {
    kind: 'file',
    format: 'parquet',
    size,
    checksum: fileHash.digest(),
    rowCount: options.rowCount?.() ?? 0,
    chunkCount,
  };
}
