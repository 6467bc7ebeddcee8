import type { Codec } from '@backhaul/core';

/** `preferredCodec: 'auto'`: the codec of each file is chosen from a sample of its own bytes. */
export const AUTO_CODEC = 'auto';

/**
 * Below this saving a compressed chunk is sent as it is: outer zstd over an already compressed
 * Parquet file saves ~4 % (docs/benchmarks.md) for CPU on both ends that bought no time.
 */
export const DEFAULT_MIN_SAVING = 0.1;

/** What `auto` chose for one file, and the sample it chose from. */
export interface CodecChoice {
  codec: string;
  /** Encoded bytes / raw bytes of the sample chunk under the candidate codec. */
  sampleRatio: number;
  sampleBytes: number;
}

/** The first encoded chunk of a file, with the decision it led to. */
export interface SampledChunk {
  choice: CodecChoice;
  /** The sample's bytes as they go on the wire (encoded when the candidate was kept). */
  body: Uint8Array;
}

/**
 * Chooses one file's chunk codec: its first chunk is encoded with `candidate` (zstd or lz4), and
 * the file keeps that codec when it saved at least `minSaving`, else every chunk goes as
 * `identity`. One file is one payload: a Parquet file's pages are compressed or not throughout,
 * so one chunk tells, and the sample's encoding is not wasted (it is the chunk that is sent).
 * Each chunk names its codec in `Backhaul-Codec` (docs/protocol.md §6.2), so nothing else changes.
 */
export async function sampleCodec(
  raw: Uint8Array,
  candidate: Codec,
  identity: Codec,
  minSaving = DEFAULT_MIN_SAVING,
): Promise<SampledChunk> {
  if (candidate.name === identity.name || raw.length === 0) {
    return { choice: { codec: identity.name, sampleRatio: 1, sampleBytes: raw.length }, body: raw };
  }
  const encoded = await candidate.encode(raw);
  const sampleRatio = encoded.length / raw.length;
  const keep = sampleRatio <= 1 - minSaving;
  return {
    choice: { codec: keep ? candidate.name : identity.name, sampleRatio, sampleBytes: raw.length },
    body: keep ? encoded : raw,
  };
}
