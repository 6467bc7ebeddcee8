import { BackhaulError, type ChunkOutcome, type Completion, type UploadStatus } from '@backhaul/core';

/** The §6.2 and §6.4 answers, worded the same whichever ingest (in memory or staged) refuses. */

type FileCompletion = Extract<Completion, { kind: 'file' }>;

export function refuseClosed(key: string, status: Exclude<UploadStatus, 'open'>): BackhaulError {
  const shown = status === 'aborted' ? 'aborted' : status === 'assembling' ? 'being completed' : 'complete';
  return new BackhaulError('invalid-state', `The file ${key} is ${shown}`);
}

/** The error for every outcome of `judgeChunk` that stores nothing and is not a duplicate. */
export function refuseChunk(
  outcome: Exclude<ChunkOutcome, { kind: 'recorded' | 'duplicate' | 'closed' }>,
  index: number,
  chunkWindow: number,
): BackhaulError {
  switch (outcome.kind) {
    case 'conflict':
      // §6.2: a different checksum for a stored index means the gateway is sending a different file.
      return new BackhaulError(
        'chunk-conflict',
        `Chunk ${index} is already stored with checksum ${outcome.stored}`,
        {
          details: { index, stored: outcome.stored },
        },
      );
    case 'out-of-window': {
      // §6.2: "An index more than hello.chunkWindow chunks past the first missing chunk: 409 (retryable)".
      const { contiguous } = outcome;
      return new BackhaulError(
        'chunk-out-of-window',
        `Chunk ${index} is too far ahead: chunks from ${contiguous} to ${contiguous + chunkWindow - 1} are accepted now`,
        { retryAfterMs: 1000, details: { contiguous, chunkWindow } },
      );
    }
    case 'misplaced-short': {
      // §6.1: only the last chunk may be shorter than chunkSize.
      const message =
        outcome.reason === 'second-short'
          ? `Chunk ${outcome.other} is already the short last chunk`
          : outcome.reason === 'short-not-last'
            ? `Chunk ${index} is short but chunk ${outcome.other} follows it`
            : `Chunk ${index} follows the short last chunk ${outcome.other}`;
      return new BackhaulError('chunk-conflict', message);
    }
  }
}

/** What an ingest received of a file, to check against its completion. */
export interface ReceivedFile {
  contiguous: number;
  /** Every stored index. */
  indices: Iterable<number>;
  bytes: number;
}

/**
 * §6.4: all chunks present and the size as stored, before the bytes are hashed; a problem here
 * (not retryable) ends the upload.
 */
export function missingFromFile(
  completion: FileCompletion,
  received: ReceivedFile,
): BackhaulError | undefined {
  const indices = [...received.indices];
  if (received.contiguous < completion.chunkCount) {
    return new BackhaulError(
      'file-incomplete',
      `Chunks 0..${completion.chunkCount - 1} were announced; chunk ${received.contiguous} is missing`,
      {
        retryable: false,
        details: {
          contiguous: received.contiguous,
          buffered: indices.filter((i) => i > received.contiguous),
        },
      },
    );
  }
  if (indices.some((index) => index >= completion.chunkCount)) {
    return new BackhaulError(
      'file-incomplete',
      `Chunks past the announced ${completion.chunkCount} were stored`,
      {
        retryable: false,
      },
    );
  }
  if (received.bytes !== completion.size) {
    return new BackhaulError(
      'file-incomplete',
      `The file was announced as ${completion.size} bytes; ${received.bytes} bytes were received`,
      { retryable: false },
    );
  }
  return undefined;
}

/** §6.4: the whole-file xxhash64 of the stored bytes against the completion's. */
export function wrongChecksum(completion: FileCompletion, digest: string): BackhaulError | undefined {
  if (digest === completion.checksum) return undefined;
  return new BackhaulError(
    'checksum-mismatch',
    `The whole file: expected ${completion.checksum}, the stored bytes hash to ${digest}`,
    { retryable: false },
  );
}
