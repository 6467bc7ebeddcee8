/**
 * Page compression. Only 'none' ships today; a codec plugs in as a synchronous `compress(page)` so the
 * writer stays dependency-free (the page assembly in parquet-writer.ts already handles compressed sizes).
 */
import { CompressionCodec } from './format-constants.js';

export type ParquetCodecName = 'snappy' | 'gzip' | 'brotli' | 'zstd' | 'lz4_raw';

/** A page codec supplied by the caller: `compress` receives one whole page body (levels + values). */
export interface ParquetPageCompressor {
  readonly codec: ParquetCodecName;
  compress(page: Uint8Array): Uint8Array;
}

export type ParquetCompression = 'none' | ParquetPageCompressor;

export interface ResolvedCompression {
  /** `ColumnMetaData.codec`. */
  readonly codec: CompressionCodec;
  /** Undefined when pages are stored as-is, which lets the writer copy them straight into the output. */
  readonly compress: ((page: Uint8Array) => Uint8Array) | undefined;
}

const CODECS: Record<ParquetCodecName, CompressionCodec> = {
  snappy: CompressionCodec.SNAPPY,
  gzip: CompressionCodec.GZIP,
  brotli: CompressionCodec.BROTLI,
  zstd: CompressionCodec.ZSTD,
  lz4_raw: CompressionCodec.LZ4_RAW,
};

export function resolveCompression(compression: ParquetCompression | undefined): ResolvedCompression {
  if (compression === undefined || compression === 'none') {
    return { codec: CompressionCodec.UNCOMPRESSED, compress: undefined };
  }
  if (
    typeof compression === 'object' &&
    compression !== null &&
    typeof compression.compress === 'function' &&
    Object.hasOwn(CODECS, compression.codec)
  ) {
    return { codec: CODECS[compression.codec], compress: (page) => compression.compress(page) };
  }
  throw new TypeError(
    `Unsupported Parquet compression ${JSON.stringify(compression)}: use 'none' or a { codec, compress } object`,
  );
}
