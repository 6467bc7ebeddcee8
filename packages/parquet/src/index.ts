export type { ParquetColumnBatch, ParquetColumnVector } from './column-batch.js';
export type { ParquetCodecName, ParquetCompression, ParquetPageCompressor } from './compression.js';
export { encodeParquet } from './encode-parquet.js';
export { ParquetWriter, type ParquetWriterOptions } from './parquet-writer.js';
export {
  decimalByteWidth,
  MAX_DECIMAL_PRECISION,
  MAX_INT64_DECIMAL_PRECISION,
  type ParquetColumn,
  type ParquetColumnType,
  type ParquetListElement,
} from './schema.js';
