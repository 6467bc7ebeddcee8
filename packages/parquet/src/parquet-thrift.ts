/**
 * Encoders for the Parquet metadata structures of `parquet.thrift`: the `PageHeader` before every page and
 * the `FileMetaData` footer. Field ids are the spec's; the comments name the spec fields.
 */
import {
  type CompressionCodec,
  Encoding,
  FieldRepetitionType,
  PageType,
  type PhysicalType,
} from './format-constants.js';
import type { ColumnSpec } from './schema.js';
import type { MinMax } from './statistics.js';
import { CompactType, ThriftCompactWriter } from './thrift-compact.js';

export interface DataPageHeaderInfo {
  uncompressedPageSize: number;
  compressedPageSize: number;
  /** Rows in the page, NULLs included (flat schema: values == rows). */
  numValues: number;
  nullCount: number;
  encoding: Encoding;
  minMax: MinMax | undefined;
}

/** `PageHeader` with a `DataPageHeader` (data page v1), its statistics included. */
export function encodeDataPageHeader(info: DataPageHeaderInfo): Uint8Array {
  const w = new ThriftCompactWriter();
  w.i32(1, PageType.DATA_PAGE) // type
    .i32(2, info.uncompressedPageSize) // uncompressed_page_size
    .i32(3, info.compressedPageSize) // compressed_page_size
    .beginStruct(5) // data_page_header
    .i32(1, info.numValues) // num_values
    .i32(2, info.encoding) // encoding
    .i32(3, Encoding.RLE) // definition_level_encoding
    .i32(4, Encoding.RLE); // repetition_level_encoding (no repetition levels are written: flat schema)
  writeStatistics(w, 5, info.nullCount, info.minMax);
  w.endStruct().endStruct();
  return w.toBytes();
}

/** `PageHeader` with a `DictionaryPageHeader`: the PLAIN-encoded dictionary of a column chunk. */
export function encodeDictionaryPageHeader(info: {
  uncompressedPageSize: number;
  compressedPageSize: number;
  numValues: number;
}): Uint8Array {
  const w = new ThriftCompactWriter();
  w.i32(1, PageType.DICTIONARY_PAGE) // type
    .i32(2, info.uncompressedPageSize) // uncompressed_page_size
    .i32(3, info.compressedPageSize) // compressed_page_size
    .beginStruct(7) // dictionary_page_header
    .i32(1, info.numValues) // num_values
    .i32(2, Encoding.PLAIN) // encoding
    .endStruct()
    .endStruct();
  return w.toBytes();
}

/** `Statistics`: null_count, and min_value/max_value (the type-defined order) when known. */
function writeStatistics(
  w: ThriftCompactWriter,
  fieldId: number,
  nullCount: number,
  minMax: MinMax | undefined,
): void {
  w.beginStruct(fieldId).i64(3, nullCount); // null_count
  if (minMax) {
    w.binary(5, minMax.max) // max_value
      .binary(6, minMax.min) // min_value
      .bool(7, true) // is_max_value_exact
      .bool(8, true); // is_min_value_exact
  }
  w.endStruct();
}

export interface ColumnChunkInfo {
  physicalType: PhysicalType;
  /** `path_in_schema`: the leaf's name, preceded by its groups' (`['tags', 'list', 'element']`). */
  path: readonly string[];
  codec: CompressionCodec;
  numValues: number;
  totalUncompressedSize: number;
  totalCompressedSize: number;
  dataPageOffset: number;
  /** Offset of the dictionary page, when the chunk is dictionary-encoded. */
  dictionaryPageOffset: number | undefined;
  nullCount: number;
  minMax: MinMax | undefined;
}

export interface RowGroupInfo {
  columns: ColumnChunkInfo[];
  numRows: number;
  /** Sum of the chunks' uncompressed sizes. */
  totalByteSize: number;
  totalCompressedSize: number;
  fileOffset: number;
}

export interface FileMetaDataInfo {
  columns: readonly ColumnSpec[];
  numRows: number;
  rowGroups: readonly RowGroupInfo[];
  createdBy: string;
}

/** `FileMetaData`, the footer that precedes the 4-byte length and the closing "PAR1". */
export function encodeFileMetaData(info: FileMetaDataInfo): Uint8Array {
  const w = new ThriftCompactWriter();
  // version: 2, as the file uses format-2.x LogicalType annotations (readers accept either).
  w.i32(1, 2);

  // schema: a depth-first list; element 0 is the root group, the columns follow as its children (a
  // list column is three elements: its group, the repeated group, the leaf).
  const lists = info.columns.filter((column) => column.element).length;
  w.beginList(2, CompactType.STRUCT, info.columns.length + 1 + 2 * lists);
  w.beginStructValue()
    .string(4, 'schema') // name
    .i32(5, info.columns.length) // num_children
    .endStruct();
  for (const column of info.columns) writeSchemaElement(w, column);

  w.i64(3, info.numRows); // num_rows

  w.beginList(4, CompactType.STRUCT, info.rowGroups.length); // row_groups
  info.rowGroups.forEach((group, ordinal) => {
    w.beginStructValue();
    w.beginList(1, CompactType.STRUCT, group.columns.length); // columns
    for (const chunk of group.columns) writeColumnChunk(w, chunk);
    w.i64(2, group.totalByteSize) // total_byte_size
      .i64(3, group.numRows) // num_rows
      .i64(5, group.fileOffset) // file_offset
      .i64(6, group.totalCompressedSize); // total_compressed_size
    if (ordinal < 0x8000) w.i16(7, ordinal); // ordinal (an i16, so only the first 32768 groups carry one)
    w.endStruct();
  });

  w.string(6, info.createdBy); // created_by
  // column_orders: every leaf is sorted in its type's defined order, which tells readers (DuckDB, Arrow,
  // Spark) that min_value/max_value can be trusted for skipping.
  w.beginList(7, CompactType.STRUCT, info.columns.length);
  for (let i = 0; i < info.columns.length; i++) {
    w.beginStructValue().beginStruct(1).endStruct().endStruct(); // ColumnOrder { TYPE_ORDER: TypeDefinedOrder {} }
  }
  w.endStruct();
  return w.toBytes();
}

function writeSchemaElement(w: ThriftCompactWriter, column: ColumnSpec): void {
  if (column.element) {
    writeListGroups(w, column);
    writeSchemaElement(w, column.element);
    return;
  }
  w.beginStructValue().i32(1, column.physicalType); // type
  if (column.typeLength > 0) w.i32(2, column.typeLength); // type_length (FIXED_LEN_BYTE_ARRAY)
  w.i32(3, column.repetitionType) // repetition_type
    .string(4, column.name); // name
  if (column.convertedType !== undefined) w.i32(6, column.convertedType); // converted_type
  const logical = column.logicalType;
  if (logical?.kind === 'DECIMAL') {
    w.i32(7, logical.scale).i32(8, logical.precision); // scale, precision (legacy DECIMAL parameters)
  }
  if (logical !== undefined) {
    w.beginStruct(10); // logicalType: a union, so exactly one member struct
    switch (logical.kind) {
      case 'STRING':
        w.beginStruct(1).endStruct(); // STRING: StringType {}
        break;
      case 'DECIMAL':
        w.beginStruct(5).i32(1, logical.scale).i32(2, logical.precision).endStruct(); // DECIMAL: DecimalType
        break;
      case 'DATE':
        w.beginStruct(6).endStruct(); // DATE: DateType {}
        break;
      case 'TIMESTAMP_MICROS_UTC':
        w.beginStruct(8) // TIMESTAMP: TimestampType
          .bool(1, true) // isAdjustedToUTC
          .beginStruct(2) // unit: TimeUnit union
          .beginStruct(2) // MICROS: MicroSeconds {}
          .endStruct()
          .endStruct()
          .endStruct();
        break;
      case 'JSON':
        w.beginStruct(12).endStruct(); // JSON: JsonType {}
        break;
    }
    w.endStruct();
  }
  w.endStruct();
}

/**
 * The two groups above a list's leaf, in the standard three-level form every reader maps to a list
 * (https://github.com/apache/parquet-format/blob/master/LogicalTypes.md#lists):
 * `<optional|required> group <name> (LIST) { repeated group list { <leaf> } }`.
 */
function writeListGroups(w: ThriftCompactWriter, column: ColumnSpec): void {
  w.beginStructValue()
    .i32(3, column.repetitionType) // repetition_type
    .string(4, column.name) // name
    .i32(5, 1) // num_children
    .i32(6, column.convertedType!) // converted_type: LIST
    .beginStruct(10) // logicalType
    .beginStruct(3) // LIST: ListType {}
    .endStruct()
    .endStruct()
    .endStruct();
  w.beginStructValue()
    .i32(3, FieldRepetitionType.REPEATED) // repetition_type
    .string(4, 'list') // name
    .i32(5, 1) // num_children
    .endStruct();
}

function writeColumnChunk(w: ThriftCompactWriter, chunk: ColumnChunkInfo): void {
  w.beginStructValue();
  // file_offset: the spec deprecates it ("inconsistently used") and asks writers for 0; readers locate
  // the chunk through meta_data.data_page_offset.
  w.i64(2, 0);
  w.beginStruct(3) // meta_data: ColumnMetaData
    .i32(1, chunk.physicalType); // type
  const encodings =
    chunk.dictionaryPageOffset === undefined
      ? [Encoding.PLAIN, Encoding.RLE]
      : [Encoding.PLAIN, Encoding.RLE, Encoding.RLE_DICTIONARY];
  w.beginList(2, CompactType.I32, encodings.length); // encodings
  for (const encoding of encodings) w.listI32(encoding);
  w.beginList(3, CompactType.BINARY, chunk.path.length); // path_in_schema
  for (const name of chunk.path) w.listString(name);
  w.i32(4, chunk.codec) // codec
    .i64(5, chunk.numValues) // num_values
    .i64(6, chunk.totalUncompressedSize) // total_uncompressed_size
    .i64(7, chunk.totalCompressedSize) // total_compressed_size
    .i64(9, chunk.dataPageOffset); // data_page_offset
  if (chunk.dictionaryPageOffset !== undefined) w.i64(11, chunk.dictionaryPageOffset); // dictionary_page_offset
  writeStatistics(w, 12, chunk.nullCount, chunk.minMax);
  w.endStruct();
  w.endStruct();
}
