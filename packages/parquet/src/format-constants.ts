/**
 * Enum values from the Parquet format's `parquet.thrift`
 * (https://github.com/apache/parquet-format/blob/master/src/main/thrift/parquet.thrift).
 * Thrift enums travel as i32, so these are plain numbers; the names mirror the spec so a reader can
 * grep the spec for them.
 */

/** `enum Type`: the physical type of a leaf column. */
export const PhysicalType = {
  BOOLEAN: 0,
  INT32: 1,
  INT64: 2,
  INT96: 3,
  FLOAT: 4,
  DOUBLE: 5,
  BYTE_ARRAY: 6,
  FIXED_LEN_BYTE_ARRAY: 7,
} as const;
export type PhysicalType = (typeof PhysicalType)[keyof typeof PhysicalType];

/** `enum ConvertedType`: the legacy annotation, still written because older readers only know it. */
export const ConvertedType = {
  UTF8: 0,
  LIST: 3,
  DECIMAL: 5,
  DATE: 6,
  TIMESTAMP_MICROS: 10,
  JSON: 19,
} as const;
export type ConvertedType = (typeof ConvertedType)[keyof typeof ConvertedType];

/** `enum FieldRepetitionType`. */
export const FieldRepetitionType = { REQUIRED: 0, OPTIONAL: 1, REPEATED: 2 } as const;
export type FieldRepetitionType = (typeof FieldRepetitionType)[keyof typeof FieldRepetitionType];

/** `enum Encoding` (only the ones this writer emits). */
export const Encoding = { PLAIN: 0, RLE: 3, RLE_DICTIONARY: 8 } as const;
export type Encoding = (typeof Encoding)[keyof typeof Encoding];

/** `enum CompressionCodec`. */
export const CompressionCodec = {
  UNCOMPRESSED: 0,
  SNAPPY: 1,
  GZIP: 2,
  LZO: 3,
  BROTLI: 4,
  LZ4: 5,
  ZSTD: 6,
  LZ4_RAW: 7,
} as const;
export type CompressionCodec = (typeof CompressionCodec)[keyof typeof CompressionCodec];

/** `enum PageType`. */
export const PageType = { DATA_PAGE: 0, INDEX_PAGE: 1, DICTIONARY_PAGE: 2, DATA_PAGE_V2: 3 } as const;
export type PageType = (typeof PageType)[keyof typeof PageType];

/** The 4-byte magic at both ends of a Parquet file. */
export const MAGIC = new Uint8Array([0x50, 0x41, 0x52, 0x31]); // "PAR1"
