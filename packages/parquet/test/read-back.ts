/** Test helpers: read our output back with hyparquet, an independent Parquet reader. */
import {
  type FileMetaData,
  type PageHeader,
  type ParquetReadOptions,
  parquetMetadata,
  parquetReadObjects,
} from 'hyparquet';
import { parquetHeader } from 'hyparquet/src/column.js';

export function concat(parts: readonly Uint8Array[]): ArrayBuffer {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out.buffer;
}

export function metadataOf(file: ArrayBuffer): FileMetaData {
  return parquetMetadata(file);
}

/** Rows as objects, with timestamps as raw bigint microseconds and dates as raw day numbers. */
export function readRaw(
  file: ArrayBuffer,
  options: Omit<Partial<ParquetReadOptions>, 'file'> = {},
): Promise<Record<string, unknown>[]> {
  return parquetReadObjects({
    file,
    utf8: false,
    parsers: { timestampFromMicroseconds: (micros: bigint) => micros, dateFromDays: (days: number) => days },
    ...options,
  } as ParquetReadOptions);
}

export function read(file: ArrayBuffer): Promise<Record<string, unknown>[]> {
  return parquetReadObjects({ file });
}

/** Every page header of every column chunk, keyed by column name, walked with hyparquet's header parser. */
export function pageHeaders(file: ArrayBuffer): Map<string, PageHeader[]> {
  const view = new DataView(file);
  const pages = new Map<string, PageHeader[]>();
  for (const group of metadataOf(file).row_groups) {
    for (const chunk of group.columns) {
      const meta = chunk.meta_data!;
      const name = meta.path_in_schema.join('.');
      const list = pages.get(name) ?? [];
      pages.set(name, list);
      const reader = { view, offset: Number(meta.dictionary_page_offset ?? meta.data_page_offset) };
      const end = reader.offset + Number(meta.total_compressed_size);
      while (reader.offset < end) {
        const header = parquetHeader(reader);
        list.push(header);
        reader.offset += header.compressed_page_size;
      }
      if (reader.offset !== end) throw new Error(`column ${name}: pages overrun the chunk`);
    }
  }
  return pages;
}
