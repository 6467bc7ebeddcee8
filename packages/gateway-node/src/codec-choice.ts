import type { Codec } from '@backhaul/core';

/** `preferredCodec: 'auto'`: the codec of each stretch of a file is chosen from a sample of it. */
export const AUTO_CODEC = 'auto';

/**
 * Below this saving a compressed chunk is sent as it is: outer zstd over an already compressed
 * Parquet file saves ~4 % (docs/benchmarks.md) for CPU on both ends that bought no time.
 */
export const DEFAULT_MIN_SAVING = 0.1;

/**
 * One chunk in this many is a sample. A Parquet file is not uniform: its first chunk is often one
 * column (an id) that compresses well even inside a compressed file, so one sample per file misleads
 * (a zstd-paged file's first chunk shrank to 0.875, the file as a whole to 0.95). Sampling every
 * 8th chunk (4 MiB at the default chunk size) follows the columns for 1/8 of the compression work.
 */
export const AUTO_SAMPLE_INTERVAL = 8;

/** What `auto` did for one file, reported once its chunks are all uploaded. */
export interface CodecChoice {
  /** The codec most of the file's chunks went with. */
  codec: string;
  /** Encoded / raw bytes over all the samples, under the candidate codec. */
  sampleRatio: number;
  samples: number;
  /** Chunks sent per codec name. */
  chunks: Record<string, number>;
}

/** One sampled chunk: the codec its stretch keeps, and its bytes as they go on the wire. */
export interface CodecSample {
  codec: Codec;
  body: Uint8Array;
  rawLength: number;
  encodedLength: number;
}

/**
 * Encodes `raw` with `candidate` (zstd or lz4) and keeps that codec if it saved at least
 * `minSaving`, else `identity`. The sample's encoding is not wasted: it is the chunk that is sent.
 */
export async function sampleCodec(
  raw: Uint8Array,
  candidate: Codec,
  identity: Codec,
  minSaving = DEFAULT_MIN_SAVING,
): Promise<CodecSample> {
  if (candidate.name === identity.name || raw.length === 0) {
    return { codec: identity, body: raw, rawLength: raw.length, encodedLength: raw.length };
  }
  const encoded = await candidate.encode(raw);
  const keep = encoded.length <= raw.length * (1 - minSaving);
  return {
    codec: keep ? candidate : identity,
    body: keep ? encoded : raw,
    rawLength: raw.length,
    encodedLength: encoded.length,
  };
}

/**
 * Chooses the codec of each chunk of one file: the first chunk sent of every stretch of
 * `interval` chunks is a sample, and the rest of the stretch follows it. Chunks must be asked
 * for in index order (they are: the uploader starts them in order, encoding concurrently).
 * Each chunk names its codec in `Backhaul-Codec` (docs/protocol.md §6.2), so mixing is allowed.
 */
export class AdaptiveCodec {
  readonly #candidate: Codec;
  readonly #identity: Codec;
  readonly #minSaving: number;
  readonly #interval: number;
  #stretch = -1;
  #stretchCodec: Promise<Codec> | undefined;
  #samples = 0;
  #sampledRaw = 0;
  #sampledEncoded = 0;
  readonly #chunks: Record<string, number> = {};

  constructor(options: { candidate: Codec; identity: Codec; minSaving?: number; interval?: number }) {
    this.#candidate = options.candidate;
    this.#identity = options.identity;
    this.#minSaving = options.minSaving ?? DEFAULT_MIN_SAVING;
    this.#interval = options.interval ?? AUTO_SAMPLE_INTERVAL;
  }

  async encode(index: number, raw: Uint8Array): Promise<{ body: Uint8Array; codec: string }> {
    const stretch = Math.floor(index / this.#interval);
    let body: Uint8Array;
    let codec: Codec;
    if (stretch === this.#stretch && this.#stretchCodec) {
      codec = await this.#stretchCodec;
      body = await codec.encode(raw);
    } else {
      this.#stretch = stretch;
      const sampled = sampleCodec(raw, this.#candidate, this.#identity, this.#minSaving);
      this.#stretchCodec = sampled.then((sample) => sample.codec);
      // A failed sample fails its own chunk, which stops the upload; the waiting chunks end with it.
      this.#stretchCodec.catch(() => undefined);
      const sample = await sampled;
      this.#samples++;
      this.#sampledRaw += sample.rawLength;
      this.#sampledEncoded += sample.encodedLength;
      codec = sample.codec;
      body = sample.body;
    }
    this.#chunks[codec.name] = (this.#chunks[codec.name] ?? 0) + 1;
    return { body, codec: codec.name };
  }

  /** The file's summary; call once every chunk is encoded. */
  choice(): CodecChoice {
    const counts = Object.entries(this.#chunks).sort((a, b) => b[1] - a[1]);
    return {
      codec: counts[0]?.[0] ?? this.#candidate.name,
      sampleRatio: this.#sampledRaw === 0 ? 1 : this.#sampledEncoded / this.#sampledRaw,
      samples: this.#samples,
      chunks: { ...this.#chunks },
    };
  }
}
