/**
 * Page compression: zstd and snappy through native codecs, or a codec the caller supplies.
 *
 * zstd comes from `@mongodb-js/zstd`, whose binding only compresses asynchronously (on libuv's thread
 * pool), so a zstd writer is driven through the async methods (`writeAsync`, `finishAsync`,
 * `encodeParquet`); the pages of a row group are then compressed in parallel. snappy (`snappy`, napi-rs
 * prebuilt binaries shipped in the npm package) has both forms, so it also works with the sync methods.
 */
import { createRequire } from 'node:module';
import { CompressionCodec } from './format-constants.js';

export type ParquetCodecName = 'snappy' | 'gzip' | 'brotli' | 'zstd' | 'lz4_raw';

/**
 * A page codec supplied by the caller: `compress` and/or `compressAsync` receive one whole page body
 * (levels + values, or a dictionary) and return the bytes written in its place.
 */
export interface ParquetPageCompressor {
  readonly codec: ParquetCodecName;
  compress?(page: Uint8Array): Uint8Array;
  compressAsync?(page: Uint8Array): Promise<Uint8Array>;
}

/** zstd's level: 1 (fastest) to 22 (smallest); default 3, zstd's own default. */
export interface ZstdCompression {
  readonly codec: 'zstd';
  readonly level?: number;
}

export type ParquetCompression = 'none' | 'snappy' | 'zstd' | ZstdCompression | ParquetPageCompressor;

export const DEFAULT_ZSTD_LEVEL = 3;
const MIN_ZSTD_LEVEL = 1;
const MAX_ZSTD_LEVEL = 22;

export interface ResolvedCompression {
  /** `ColumnMetaData.codec`. */
  readonly codec: CompressionCodec;
  /** Undefined when pages are stored as-is. */
  readonly compress: ((page: Uint8Array) => Uint8Array) | undefined;
  readonly compressAsync: ((page: Uint8Array) => Promise<Uint8Array>) | undefined;
}

const CODECS: Record<ParquetCodecName, CompressionCodec> = {
  snappy: CompressionCodec.SNAPPY,
  gzip: CompressionCodec.GZIP,
  brotli: CompressionCodec.BROTLI,
  zstd: CompressionCodec.ZSTD,
  lz4_raw: CompressionCodec.LZ4_RAW,
};

interface ZstdBinding {
  compress(data: Buffer, level?: number | null): Promise<Buffer>;
}
interface SnappyBinding {
  compressSync(data: Buffer): Buffer;
  compress(data: Buffer): Promise<Buffer>;
}

const require = createRequire(import.meta.url);
let zstdBinding: ZstdBinding | undefined;
let snappyBinding: SnappyBinding | undefined;

/** `@mongodb-js/zstd`'s JS wrapper ignores `level`; its native binding honours it. */
function zstd(): ZstdBinding {
  zstdBinding ??= require('@mongodb-js/zstd/bindings') as ZstdBinding;
  return zstdBinding;
}

function snappy(): SnappyBinding {
  snappyBinding ??= require('snappy') as SnappyBinding;
  return snappyBinding;
}

function asBuffer(page: Uint8Array): Buffer {
  return Buffer.isBuffer(page) ? page : Buffer.from(page.buffer, page.byteOffset, page.byteLength);
}

export function resolveCompression(compression: ParquetCompression | undefined): ResolvedCompression {
  if (compression === undefined || compression === 'none') {
    return { codec: CompressionCodec.UNCOMPRESSED, compress: undefined, compressAsync: undefined };
  }
  if (compression === 'snappy') {
    const codec = snappy();
    return {
      codec: CompressionCodec.SNAPPY,
      compress: (page) => codec.compressSync(asBuffer(page)),
      compressAsync: (page) => codec.compress(asBuffer(page)),
    };
  }
  if (
    compression === 'zstd' ||
    (isObject(compression) && compression.codec === 'zstd' && !isCompressor(compression))
  ) {
    const level = (compression as ZstdCompression).level ?? DEFAULT_ZSTD_LEVEL;
    if (!Number.isInteger(level) || level < MIN_ZSTD_LEVEL || level > MAX_ZSTD_LEVEL) {
      throw new RangeError(
        `zstd level must be an integer from ${MIN_ZSTD_LEVEL} to ${MAX_ZSTD_LEVEL}, got ${level}`,
      );
    }
    const codec = zstd();
    return {
      codec: CompressionCodec.ZSTD,
      compress: undefined,
      compressAsync: (page) => codec.compress(asBuffer(page), level),
    };
  }
  if (
    isObject(compression) &&
    isCompressor(compression) &&
    Object.hasOwn(CODECS, String(compression.codec))
  ) {
    const custom = compression as unknown as ParquetPageCompressor;
    const compress = custom.compress?.bind(custom);
    const compressAsync = custom.compressAsync?.bind(custom);
    return {
      codec: CODECS[custom.codec],
      compress,
      compressAsync: compressAsync ?? (compress ? async (page) => compress(page) : undefined),
    };
  }
  throw new TypeError(
    `Unsupported Parquet compression ${JSON.stringify(compression)}: use 'zstd', 'snappy', 'none', ` +
      "{ codec: 'zstd', level } or a { codec, compress | compressAsync } object",
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isCompressor(value: Record<string, unknown>): boolean {
  return typeof value.compress === 'function' || typeof value.compressAsync === 'function';
}
