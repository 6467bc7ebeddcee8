import {
  type ChunkEntry,
  type CompletionClaim,
  judgeChunk,
  type UploadLedger,
  type UploadRecord,
  type UploadStatus,
} from './upload-ledger.js';

export interface MemoryUploadLedgerOptions {
  /** How long an upload is remembered after its last change (epoch-ms clock). Default 7 days. */
  retentionMs?: number;
}

const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60_000;

interface MemoryUpload {
  status: UploadStatus;
  chunks: Map<number, ChunkEntry>;
  contiguous: number;
  shortIndex: number | undefined;
  highestIndex: number;
  owner: string | undefined;
  leaseUntil: number;
  result: string | undefined;
  touchedAt: number;
}

/**
 * An `UploadLedger` in process memory: for one process, or several servers in one process handed
 * the same object (tests). Servers in separate processes need a shared one (@backhaul/store-redis).
 */
export function createMemoryUploadLedger(options: MemoryUploadLedgerOptions = {}): UploadLedger {
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  const uploads = new Map<string, MemoryUpload>();

  /** Forgets uploads untouched past the retention, as Redis keys expire. */
  const forgetExpired = (now: number) => {
    for (const [id, upload] of uploads) if (now - upload.touchedAt > retentionMs) uploads.delete(id);
  };
  const uploadFor = (uploadId: string): MemoryUpload => {
    const now = Date.now();
    forgetExpired(now);
    let upload = uploads.get(uploadId);
    if (!upload) {
      upload = {
        status: 'open',
        chunks: new Map(),
        contiguous: 0,
        shortIndex: undefined,
        highestIndex: -1,
        owner: undefined,
        leaseUntil: 0,
        result: undefined,
        touchedAt: now,
      };
      uploads.set(uploadId, upload);
    }
    upload.touchedAt = now;
    return upload;
  };
  // A lease that ran out still holds until another instance claims: a slow holder may finish.
  const holds = (upload: MemoryUpload, owner: string) =>
    upload.status === 'assembling' && upload.owner === owner;
  const snapshot = (upload: MemoryUpload): UploadRecord => ({
    status: upload.status,
    contiguous: upload.contiguous,
    chunks: new Map([...upload.chunks].map(([index, chunk]) => [index, { ...chunk }])),
    ...(upload.result === undefined ? {} : { result: upload.result }),
  });

  return {
    specificationVersion: 'v1',
    name: 'memory',

    async recordChunk(uploadId, chunk, rules) {
      const upload = uploadFor(uploadId);
      if (upload.status !== 'open') return { kind: 'closed', status: upload.status };
      const outcome = judgeChunk(
        {
          stored: (index) => upload.chunks.get(index)?.checksum,
          contiguous: upload.contiguous,
          shortIndex: upload.shortIndex,
          highestIndex: upload.highestIndex,
        },
        chunk,
        rules,
      );
      if (outcome.kind !== 'recorded') return outcome;
      upload.chunks.set(chunk.index, { ...chunk });
      if (chunk.size < rules.chunkSize) upload.shortIndex = chunk.index;
      upload.highestIndex = Math.max(upload.highestIndex, chunk.index);
      while (upload.chunks.has(upload.contiguous)) upload.contiguous++;
      return outcome;
    },

    async read(uploadId) {
      forgetExpired(Date.now());
      const upload = uploads.get(uploadId);
      return upload ? snapshot(upload) : { status: 'open', contiguous: 0, chunks: new Map() };
    },

    async claimCompletion(uploadId, owner, leaseMs): Promise<CompletionClaim> {
      const upload = uploadFor(uploadId);
      if (upload.status === 'completed') return { kind: 'completed', result: upload.result ?? '' };
      if (upload.status === 'aborted') return { kind: 'aborted' };
      const now = Date.now();
      if (upload.status === 'assembling' && upload.owner !== owner && upload.leaseUntil > now) {
        return { kind: 'busy', retryAfterMs: upload.leaseUntil - now };
      }
      upload.status = 'assembling';
      upload.owner = owner;
      upload.leaseUntil = now + leaseMs;
      return { kind: 'claimed' };
    },

    async renewClaim(uploadId, owner, leaseMs) {
      const upload = uploadFor(uploadId);
      if (!holds(upload, owner)) return false;
      upload.leaseUntil = Date.now() + leaseMs;
      return true;
    },

    async releaseClaim(uploadId, owner) {
      const upload = uploadFor(uploadId);
      if (upload.status !== 'assembling' || upload.owner !== owner) return;
      upload.status = 'open';
      upload.owner = undefined;
      upload.leaseUntil = 0;
    },

    async complete(uploadId, owner, result) {
      const upload = uploadFor(uploadId);
      if (!holds(upload, owner)) return false;
      upload.status = 'completed';
      upload.result = result;
      upload.owner = undefined;
      return true;
    },

    async abort(uploadId) {
      const upload = uploadFor(uploadId);
      if (upload.status !== 'completed') {
        upload.status = 'aborted';
        upload.owner = undefined;
      }
      return snapshot(upload);
    },

    async close() {
      uploads.clear();
    },
  };
}
