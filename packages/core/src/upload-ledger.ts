/**
 * The shared state of file uploads (docs/protocol.md §6, docs/cluster.md "Shared uploads"): which
 * chunks of each upload were acknowledged, and who completes it. Servers that share a ledger (and
 * an object storage) take the chunks and the completion of one file on any of them, with no sticky
 * routing: every acknowledgement is a receipt here, written by compare-and-set, and the completion
 * is claimed under a lease, so an instance that dies while assembling is replaced by the next one
 * a retried completion reaches.
 *
 * The ledger records; it never holds chunk bytes (the server stages those in the object storage).
 */
export interface UploadLedger {
  readonly specificationVersion: 'v1';
  readonly name: string;
  /**
   * Records chunk `index`, atomically against every receipt of the upload (the §6.2 rules, as
   * `judgeChunk` states them). Only `recorded` changes anything; an upload not seen before is open.
   */
  recordChunk(uploadId: string, chunk: ChunkEntry, rules: ChunkRules): Promise<ChunkOutcome>;
  /** The upload as recorded; an upload not seen before is open with no chunks. */
  read(uploadId: string): Promise<UploadRecord>;
  /**
   * Claims the completion for `owner` for `leaseMs`. `claimed` also when `owner` holds it already
   * (the lease is renewed) or when the holder's lease ran out (the holder died). Once claimed, no
   * chunk is recorded any more, unless the claim is released.
   */
  claimCompletion(uploadId: string, owner: string, leaseMs: number): Promise<CompletionClaim>;
  /** Extends `owner`'s lease; false when `owner` no longer holds the claim. */
  renewClaim(uploadId: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Gives the claim back (the assembly failed in a way a retry can fix): the upload is open again. */
  releaseClaim(uploadId: string, owner: string): Promise<void>;
  /**
   * Records the result (the server's JSON) and ends the upload; every later claim answers
   * `completed` with it. False when `owner` no longer holds the claim (another instance took over).
   */
  complete(uploadId: string, owner: string, result: string): Promise<boolean>;
  /** Ends the upload without a result: chunks and claims are refused from now on. Idempotent. */
  abort(uploadId: string): Promise<UploadRecord>;
  close(): Promise<void>;
}

export interface ChunkEntry {
  index: number;
  /** xxhash64 of the decoded bytes, 16 lower-case hex digits (§6.1 `Backhaul-Checksum`). */
  checksum: string;
  /** Decoded length in bytes. */
  size: number;
}

export interface ChunkRules {
  /** `hello.chunkSize`: every chunk but the last has exactly this size. */
  chunkSize: number;
  /** `hello.chunkWindow`: how far past the first missing chunk an index may be. */
  chunkWindow: number;
}

export type UploadStatus = 'open' | 'assembling' | 'completed' | 'aborted';

export interface UploadRecord {
  status: UploadStatus;
  /** Chunks `0..contiguous-1` are all recorded. */
  contiguous: number;
  /** Every recorded chunk, by index. */
  chunks: Map<number, ChunkEntry>;
  /** Present once `completed`. */
  result?: string;
}

export type ChunkOutcome =
  | { kind: 'recorded' }
  /** The same index with the same checksum: nothing changed. */
  | { kind: 'duplicate' }
  /** The same index with another checksum. */
  | { kind: 'conflict'; stored: string }
  /** The index is `chunkWindow` or more past the first missing chunk. */
  | { kind: 'out-of-window'; contiguous: number }
  /** A short chunk that cannot be the last one, or a chunk past the short last one. */
  | { kind: 'misplaced-short'; reason: 'second-short' | 'short-not-last' | 'after-short'; other: number }
  /** The upload is being completed, is complete or was aborted. */
  | { kind: 'closed'; status: Exclude<UploadStatus, 'open'> };

export type CompletionClaim =
  | { kind: 'claimed' }
  /** Another instance holds the claim for `retryAfterMs` more. */
  | { kind: 'busy'; retryAfterMs: number }
  | { kind: 'completed'; result: string }
  | { kind: 'aborted' };

/** What a ledger knows of an open upload when it judges a chunk. */
export interface ChunkLayout {
  stored(index: number): string | undefined;
  contiguous: number;
  /** Index of the one chunk shorter than chunkSize, if recorded. */
  shortIndex: number | undefined;
  /** Highest recorded index, -1 for none. */
  highestIndex: number;
}

/**
 * The §6.2 rules for one chunk against what is recorded, in the order the server applies them:
 * idempotency first (a retry of a stored chunk always succeeds), then the window, then the short
 * last chunk. Shared by the in-memory ingest and ledger; the Redis ledger states the same in Lua.
 */
export function judgeChunk(
  layout: ChunkLayout,
  chunk: ChunkEntry,
  rules: ChunkRules,
): Exclude<ChunkOutcome, { kind: 'closed' }> {
  const stored = layout.stored(chunk.index);
  if (stored !== undefined) {
    return stored === chunk.checksum ? { kind: 'duplicate' } : { kind: 'conflict', stored };
  }
  if (chunk.index >= layout.contiguous + rules.chunkWindow) {
    return { kind: 'out-of-window', contiguous: layout.contiguous };
  }
  const short = chunk.size < rules.chunkSize;
  if (short && layout.shortIndex !== undefined) {
    return { kind: 'misplaced-short', reason: 'second-short', other: layout.shortIndex };
  }
  if (short && layout.highestIndex > chunk.index) {
    return { kind: 'misplaced-short', reason: 'short-not-last', other: layout.highestIndex };
  }
  if (!short && layout.shortIndex !== undefined && chunk.index > layout.shortIndex) {
    return { kind: 'misplaced-short', reason: 'after-short', other: layout.shortIndex };
  }
  return { kind: 'recorded' };
}
