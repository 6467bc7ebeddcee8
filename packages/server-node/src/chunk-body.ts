import type { IncomingMessage } from 'node:http';
import {
  BackhaulError,
  type Checksummer,
  type Codec,
  type CodecRegistry,
  chunkHeadersSchema,
  headers,
  parseMessage,
} from '@backhaul/core';
import { discardBody, readBody, requireMediaType } from './http-io.js';

/** Headroom over chunkSize for a compressed body that did not shrink (zstd/lz4 framing). */
export const CODEC_OVERHEAD_BYTES = 64 * 1024;

/** What a chunk PUT says about its body (§6.1), checked before a byte of it is read. */
export interface ChunkHead {
  codec: Codec;
  /** xxhash64 of the decoded bytes. */
  checksum: string;
  rawLength: number;
}

export interface ChunkBodyLimits {
  codecs: CodecRegistry;
  checksummer: Checksummer;
  chunkSize: number;
}

/** §6.1, §6.2: the media type, the headers, the decoded size and the codec, before the body is read. */
export function readChunkHead(req: IncomingMessage, limits: ChunkBodyLimits): ChunkHead {
  // §6.1: a chunk is `application/octet-stream`; anything else is refused before a byte is read.
  requireMediaType(req, ['application/octet-stream']);
  const single = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const { codec, checksum, rawLength } = parseMessage(
    chunkHeadersSchema,
    {
      codec: single(headers.codec),
      checksum: single(headers.checksum),
      rawLength: single(headers.rawLength),
    },
    'chunk headers',
  );
  // §6.2: too large is decided before the output is allocated, and before the body is read.
  if (rawLength > limits.chunkSize) {
    throw new BackhaulError(
      'payload-too-large',
      `A chunk decodes to at most ${limits.chunkSize} bytes, not ${rawLength}`,
    );
  }
  return { codec: limits.codecs.get(codec), checksum, rawLength }; // 415 unsupported-codec
}

/** Reads and drops the body of a chunk answered without it (a retry of a stored chunk). */
export async function skipChunkBody(req: IncomingMessage, limits: ChunkBodyLimits): Promise<void> {
  await discardBody(req, limits.chunkSize + CODEC_OVERHEAD_BYTES);
}

/**
 * Reads the body under a cap, decodes it under a cap, and checks its length and xxhash64 against
 * the headers (§6.2: otherwise 422 checksum-mismatch, nothing stored). Runs outside any lock, so
 * chunks of one file decode in parallel.
 */
export async function readVerifiedChunk(
  req: IncomingMessage,
  index: number,
  head: ChunkHead,
  limits: ChunkBodyLimits,
): Promise<Uint8Array> {
  const { codec, checksum, rawLength } = head;
  const maxBody = codec.name === 'identity' ? limits.chunkSize : limits.chunkSize + CODEC_OVERHEAD_BYTES;
  const body = await readBody(req, maxBody);
  let decoded: Uint8Array;
  try {
    decoded = await codec.decode(body, limits.chunkSize);
  } catch (error) {
    if (BackhaulError.isInstance(error)) throw error;
    throw new BackhaulError('corrupt-data', `Chunk ${index} is not a valid ${codec.name} frame`, {
      cause: error,
    });
  }
  if (decoded.length !== rawLength) {
    throw new BackhaulError(
      'checksum-mismatch',
      `Chunk ${index}: decoded ${decoded.length} bytes, the header says ${rawLength}`,
      { details: { index } },
    );
  }
  const actual = limits.checksummer.digest(decoded);
  if (actual !== checksum) {
    throw new BackhaulError('checksum-mismatch', `Chunk ${index}: expected ${checksum}, got ${actual}`, {
      details: { index },
    });
  }
  return decoded;
}
