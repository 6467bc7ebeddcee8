import { createRequire } from 'node:module';
import { assertWithinCap, BackhaulError, type Codec } from '@backhaul/core';
import { measureFrame, readFrameHeader, withContentSize, ZstdFrameError } from './zstd-frame.js';

export interface ZstdCodecOptions {
  /**
   * Compression level, from -131072 (fastest) to 22 (smallest); 0 means zstd's default (3).
   * Default 1: chunks are compressed on the hot path, and level 1 keeps up with a fast link.
   */
  level?: number;
}

interface ZstdBinding {
  compress(data: Buffer, level?: number | null): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

/** libzstd's ZSTD_minCLevel() and ZSTD_maxCLevel(). */
const minLevel = -131_072;
const maxLevel = 22;

let binding: ZstdBinding | undefined;

/**
 * `@mongodb-js/zstd`'s JS wrapper drops its `level` argument and always compresses at level 3,
 * so we call the native binding it wraps, which honours the level.
 */
function loadBinding(): ZstdBinding {
  binding ??= createRequire(import.meta.url)('@mongodb-js/zstd/bindings') as ZstdBinding;
  return binding;
}

/**
 * The zstd chunk codec. Frames carry Frame_Content_Size in their header; `decode` reads it and
 * refuses before decompressing, because the native `decompress` has no output cap of its own.
 */
export function createZstdCodec(options: ZstdCodecOptions = {}): Codec {
  const level = options.level ?? 1;
  if (!Number.isInteger(level) || level < minLevel || level > maxLevel) {
    throw new RangeError(`zstd level must be an integer from ${minLevel} to ${maxLevel}, got ${level}`);
  }
  const zstd = loadBinding();

  return {
    specificationVersion: 'v1',
    name: 'zstd',

    async encode(raw) {
      const frame = await zstd.compress(asBuffer(raw), level);
      // The binding compresses in streaming mode and so omits the content size; our decoder
      // (and the server's) refuses frames without it, so declare it here.
      return withContentSize(frame, raw.length);
    },

    async decode(encoded, maxOutputBytes) {
      let contentSize: number;
      try {
        const header = readFrameHeader(encoded);
        // §6.2: a decoded length above chunkSize is refused "before the output is allocated".
        // A frame that does not declare its size cannot be bounded before decoding, so it is refused too.
        if (header.contentSize === undefined) {
          throw new BackhaulError(
            'payload-too-large',
            'zstd frame does not declare its content size, so its output cannot be capped',
          );
        }
        if (header.contentSize > BigInt(maxOutputBytes)) {
          throw new BackhaulError(
            'payload-too-large',
            `zstd output of ${header.contentSize} bytes exceeds the cap of ${maxOutputBytes} bytes`,
          );
        }
        if (header.dictionaryId !== 0) throw new ZstdFrameError('frame needs a dictionary');
        // The native decoder would go on into a second frame, which this header does not bound.
        if (measureFrame(encoded, header) !== encoded.length) {
          throw new ZstdFrameError('bytes after the end of the frame (a second or skippable frame)');
        }
        contentSize = Number(header.contentSize);
      } catch (error) {
        if (error instanceof ZstdFrameError) throw corrupt(error);
        throw error;
      }

      let decoded: Buffer;
      try {
        // With a declared size libzstd decodes into a buffer of exactly that size and fails
        // rather than grow it, so a header that lies low cannot make it allocate more.
        decoded = await zstd.decompress(asBuffer(encoded));
      } catch (error) {
        throw corrupt(error);
      }
      if (decoded.length !== contentSize) {
        throw new BackhaulError(
          'corrupt-data',
          `zstd frame declared ${contentSize} bytes but decoded to ${decoded.length}`,
        );
      }
      assertWithinCap(decoded.length, maxOutputBytes, 'zstd');
      return decoded;
    },
  };
}

function corrupt(cause: unknown): BackhaulError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new BackhaulError('corrupt-data', `zstd: ${reason}`, { cause });
}

/** A view, not a copy: napi wants a Buffer, and chunks arrive as plain Uint8Arrays. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
