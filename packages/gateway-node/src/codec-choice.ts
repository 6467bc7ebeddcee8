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

/**
 * `auto` keeps the candidate only if the wire time of the bytes it saves exceeds this many times the
 * sample's encode time. The server decodes every chunk too: zstd level 1 decodes a 512 KiB chunk of
 * the bench file in about half its encode time (1.4 vs 2.7 ms), so the codec costs ~1.5 encodes of
 * CPU; 2 leaves a margin for timing one sample. So a chunk of that file (288 KB saved, 2.7 ms to
 * encode here) keeps zstd below ~50 MB/s (400 Mbit/s) of goodput; loopback measured 50-210 MB/s
 * and sent most chunks as identity (docs/benchmarks.md).
 */
export const DEFAULT_LINK_FACTOR = 2;

/**
 * Why a stretch got its codec. `data`: the sample saved less than `minSaving`, or saved enough and
 * the link's speed was not known yet. `link`: it saved enough, and the link's goodput decided.
 */
export type CodecReason = 'data' | 'link';

/** What `auto` did for one file, reported once its chunks are all uploaded. */
export interface CodecChoice {
  /** The codec most of the file's chunks went with. */
  codec: string;
  /** Why most of the chunks that went with `codec` did (see `CodecReason`). */
  reason: CodecReason;
  /** Encoded / raw bytes over all the samples, under the candidate codec. */
  sampleRatio: number;
  samples: number;
  /** Chunks sent per codec name. */
  chunks: Record<string, number>;
  /** The link's goodput (bytes per second) the last sample was weighed against, if one was known. */
  goodput?: number;
}

/** What a sample is weighed with. */
export interface CodecDecisionInput {
  rawLength: number;
  encodedLength: number;
  /** Wall time of the candidate's encode of the sample. */
  encodeSeconds: number;
  /** The link's recent goodput in bytes per second; undefined until one is measured. */
  goodput: number | undefined;
  minSaving: number;
  linkFactor: number;
}

/**
 * Keep the candidate only if it saves at least `minSaving` of the bytes and, once the link's goodput
 * is known, the wire time of the saved bytes exceeds `linkFactor` × the encode time: on a fast link
 * (loopback, a LAN) compressing costs more CPU on both ends than the bytes it saves would take.
 */
export function decideCodec(input: CodecDecisionInput): { keep: boolean; reason: CodecReason } {
  const saved = input.rawLength - input.encodedLength;
  if (saved < input.rawLength * input.minSaving) return { keep: false, reason: 'data' };
  if (input.goodput === undefined) return { keep: true, reason: 'data' };
  return { keep: saved / input.goodput > input.encodeSeconds * input.linkFactor, reason: 'link' };
}

/** One sampled chunk: the codec its stretch keeps, why, and its bytes as they go on the wire. */
export interface CodecSample {
  codec: Codec;
  reason: CodecReason;
  body: Uint8Array;
  rawLength: number;
  encodedLength: number;
  encodeSeconds: number;
}

/** How the link is weighed: its goodput now (bytes per second, if known) and `DEFAULT_LINK_FACTOR`. */
export interface LinkWeighing {
  goodput?: number;
  linkFactor?: number;
}

/**
 * Encodes `raw` with `candidate` (zstd or lz4) and keeps that codec as `decideCodec` says, else
 * `identity`. Without a goodput this is the data-only rule. The sample's encoding is not wasted: it
 * is the chunk that is sent.
 */
export async function sampleCodec(
  raw: Uint8Array,
  candidate: Codec,
  identity: Codec,
  minSaving = DEFAULT_MIN_SAVING,
  link: LinkWeighing = {},
): Promise<CodecSample> {
  if (candidate.name === identity.name || raw.length === 0) {
    return {
      codec: identity,
      reason: 'data',
      body: raw,
      rawLength: raw.length,
      encodedLength: raw.length,
      encodeSeconds: 0,
    };
  }
  const started = performance.now();
  const encoded = await candidate.encode(raw);
  const encodeSeconds = (performance.now() - started) / 1000;
  const { keep, reason } = decideCodec({
    rawLength: raw.length,
    encodedLength: encoded.length,
    encodeSeconds,
    goodput: link.goodput,
    minSaving,
    linkFactor: link.linkFactor ?? DEFAULT_LINK_FACTOR,
  });
  return {
    codec: keep ? candidate : identity,
    reason,
    body: keep ? encoded : raw,
    rawLength: raw.length,
    encodedLength: encoded.length,
    encodeSeconds,
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
  readonly #goodput: () => number | undefined;
  readonly #linkFactor: number;
  #stretch = -1;
  #stretchChoice: Promise<StretchChoice> | undefined;
  #samples = 0;
  #sampledRaw = 0;
  #sampledEncoded = 0;
  #lastGoodput: number | undefined;
  readonly #chunks: Record<string, number> = {};
  /** Chunks per codec and reason, for the summary's `reason`. */
  readonly #reasons = new Map<string, Record<CodecReason, number>>();

  constructor(options: {
    candidate: Codec;
    identity: Codec;
    minSaving?: number;
    interval?: number;
    /** The link's goodput now, in bytes per second (`GoodputMeter`); without it, data decides alone. */
    goodput?: () => number | undefined;
    linkFactor?: number;
  }) {
    this.#candidate = options.candidate;
    this.#identity = options.identity;
    this.#minSaving = options.minSaving ?? DEFAULT_MIN_SAVING;
    this.#interval = options.interval ?? AUTO_SAMPLE_INTERVAL;
    this.#goodput = options.goodput ?? (() => undefined);
    this.#linkFactor = options.linkFactor ?? DEFAULT_LINK_FACTOR;
  }

  async encode(index: number, raw: Uint8Array): Promise<{ body: Uint8Array; codec: string }> {
    const stretch = Math.floor(index / this.#interval);
    let body: Uint8Array;
    let choice: StretchChoice;
    if (stretch === this.#stretch && this.#stretchChoice) {
      choice = await this.#stretchChoice;
      body = await choice.codec.encode(raw);
    } else {
      this.#stretch = stretch;
      const goodput = this.#goodput();
      const sampled = sampleCodec(raw, this.#candidate, this.#identity, this.#minSaving, {
        goodput,
        linkFactor: this.#linkFactor,
      });
      this.#stretchChoice = sampled.then(({ codec, reason }) => ({ codec, reason }));
      // A failed sample fails its own chunk, which stops the upload; the waiting chunks end with it.
      this.#stretchChoice.catch(() => undefined);
      const sample = await sampled;
      this.#samples++;
      this.#sampledRaw += sample.rawLength;
      this.#sampledEncoded += sample.encodedLength;
      if (goodput !== undefined) this.#lastGoodput = goodput;
      choice = sample;
      body = sample.body;
    }
    const name = choice.codec.name;
    this.#chunks[name] = (this.#chunks[name] ?? 0) + 1;
    const reasons = this.#reasons.get(name) ?? { data: 0, link: 0 };
    reasons[choice.reason]++;
    this.#reasons.set(name, reasons);
    return { body, codec: name };
  }

  /** The file's summary; call once every chunk is encoded. */
  choice(): CodecChoice {
    const counts = Object.entries(this.#chunks).sort((a, b) => b[1] - a[1]);
    const codec = counts[0]?.[0] ?? this.#candidate.name;
    const reasons = this.#reasons.get(codec);
    return {
      codec,
      reason: reasons && reasons.link > reasons.data ? 'link' : 'data',
      sampleRatio: this.#sampledRaw === 0 ? 1 : this.#sampledEncoded / this.#sampledRaw,
      samples: this.#samples,
      chunks: { ...this.#chunks },
      ...(this.#lastGoodput === undefined ? {} : { goodput: Math.round(this.#lastGoodput) }),
    };
  }
}

interface StretchChoice {
  codec: Codec;
  reason: CodecReason;
}
