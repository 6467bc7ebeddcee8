/**
 * Turns one column's buffered row group (PLAIN values, definition bitmap, page cuts) into the pages of
 * its column chunk: dictionary-encoded when the dictionary pays and stays small, PLAIN otherwise, with
 * min/max/null_count statistics per page and for the chunk.
 *
 * Dictionary rule: every column but BOOLEAN tries one. The chunk stays PLAIN (whole, so no reader meets
 * a mid-chunk switch) when the dictionary's PLAIN size passes `dictionaryPageSize` (default 1 MiB, as
 * parquet-mr and Arrow), when it would pass 2^20 entries, or when more than 3/4 of the values are
 * distinct, forecast from the first 4096 (an id, a timestamp, free text: a dictionary would only add
 * bytes and time; see `buildDictionary`).
 */
import type { ColumnEncoder, PageSlice } from './column-encoder.js';
import { definitionLevelsSize, writeDefinitionLevels } from './definition-levels.js';
import { buildDictionary, type Dictionary, dictionaryBody } from './dictionary.js';
import { Encoding, PhysicalType } from './format-constants.js';
import { GrowableBuffer } from './growable-buffer.js';
import { ListColumnEncoder } from './list-encoder.js';
import { bitWidthFor, writeHybrid } from './rle-hybrid.js';
import type { ColumnSpec } from './schema.js';
import {
  booleanMinMax,
  boundedByteArrays,
  byteArrayMinMax,
  compareRanges,
  doubleMinMax,
  fixedMinMax,
  int32MinMax,
  int64MinMax,
  type MinMax,
  mergeMinMax,
} from './statistics.js';

export const DEFAULT_DICTIONARY_PAGE_SIZE = 1 << 20;

export interface EncodedPage {
  /** Uncompressed page body: definition levels, then the values. */
  body: Uint8Array;
  rowCount: number;
  nullCount: number;
  encoding: Encoding;
  minMax: MinMax | undefined;
}

export interface EncodedChunk {
  spec: ColumnSpec;
  /** The dictionary page body (PLAIN values) and its entry count, when the chunk is dictionary-encoded. */
  dictionary: { body: Uint8Array; count: number } | undefined;
  pages: EncodedPage[];
  numValues: number;
  nullCount: number;
  minMax: MinMax | undefined;
}

const scratch = new GrowableBuffer();

/** A flat column's encoder, or a list column's (whose leaf's values it encodes the same way). */
export type ChunkEncoder = ColumnEncoder | ListColumnEncoder;

export function encodeChunk(encoder: ChunkEncoder, dictionaryPageSize: number): EncodedChunk {
  const spec = encoder.spec;
  const slices = encoder.pages();
  const dictionary =
    spec.physicalType === PhysicalType.BOOLEAN || dictionaryPageSize === 0
      ? undefined
      : buildDictionary(encoder.plainBytes, encoder.valueCount, plainWidth(spec), dictionaryPageSize);
  // Page of the last visit to each entry, so a page compares each of its distinct strings once.
  const visited =
    dictionary && spec.physicalType === PhysicalType.BYTE_ARRAY
      ? new Int32Array(dictionary.starts.length).fill(-1)
      : undefined;
  const bitWidth = dictionary ? bitWidthFor(dictionary.starts.length) : 0;
  const pages = slices.map((page, pageIndex): EncodedPage => {
    const nullCount = page.rowCount - page.valueCount;
    const listLevels = encoder instanceof ListColumnEncoder ? encoder.pageLevels(page) : undefined;
    const levelBytes = listLevels
      ? listLevels.length
      : spec.nullable
        ? definitionLevelsSize(page.rowCount, nullCount)
        : 0;
    let body: Buffer;
    let minMax: MinMax | undefined;
    if (dictionary) {
      scratch.length = 0;
      scratch.reserve(1);
      scratch.bytes[scratch.length++] = bitWidth;
      writeHybrid(dictionary.indices, page.valueStart, page.valueCount, bitWidth, scratch);
      body = Buffer.allocUnsafe(levelBytes + scratch.length);
      body.set(scratch.bytes.subarray(0, scratch.length), levelBytes);
      minMax = visited
        ? dictionaryMinMax(encoder.plainBytes, dictionary, visited, pageIndex, page)
        : plainMinMax(encoder, page, undefined);
    } else {
      const valueBytes = encoder.pageValueBytes(page);
      body = Buffer.allocUnsafe(levelBytes + valueBytes);
      encoder.writePageValues(page, body, levelBytes);
      minMax = plainMinMax(encoder, page, body.subarray(levelBytes));
    }
    if (listLevels) {
      body.set(listLevels, 0);
    } else if (levelBytes > 0 && !(encoder instanceof ListColumnEncoder)) {
      writeDefinitionLevels(body, 0, encoder.definitionBits, page.rowStart, page.rowCount, nullCount);
    }
    return {
      body,
      rowCount: page.rowCount,
      nullCount,
      encoding: dictionary ? Encoding.RLE_DICTIONARY : Encoding.PLAIN,
      minMax,
    };
  });
  return {
    spec,
    dictionary: dictionary && {
      body: dictionaryBody(encoder.plainBytes, dictionary),
      count: dictionary.starts.length,
    },
    pages,
    numValues: encoder.rowCount,
    nullCount: encoder.rowCount - encoder.valueCount,
    minMax: mergeMinMax(
      spec.physicalType,
      pages.filter((page) => page.rowCount > page.nullCount).map((page) => page.minMax),
    ),
  };
}

function plainMinMax(
  encoder: ChunkEncoder,
  page: PageSlice,
  values: Uint8Array | undefined,
): MinMax | undefined {
  if (page.valueCount === 0) return undefined;
  const bytes = encoder.plainBytes;
  switch (encoder.spec.physicalType) {
    case PhysicalType.BOOLEAN: {
      const bits = values ?? new Uint8Array(encoder.pageValueBytes(page));
      if (!values) encoder.writePageValues(page, bits, 0);
      return booleanMinMax(bits, 0, page.valueCount);
    }
    case PhysicalType.INT32:
      return int32MinMax(bytes, page.byteStart, page.valueCount);
    case PhysicalType.INT64:
      return int64MinMax(bytes, page.byteStart, page.valueCount);
    case PhysicalType.DOUBLE:
      return doubleMinMax(bytes, page.byteStart, page.valueCount);
    case PhysicalType.FIXED_LEN_BYTE_ARRAY: {
      const width = encoder.spec.typeLength;
      return fixedMinMax(bytes, page.byteStart, page.valueCount, width);
    }
    default:
      return byteArrayMinMax(bytes, page.byteStart, page.valueCount);
  }
}

/** Bytes of one PLAIN value, or 0 for BYTE_ARRAY's length-prefixed values. */
function plainWidth(spec: ColumnSpec): number {
  switch (spec.physicalType) {
    case PhysicalType.INT32:
      return 4;
    case PhysicalType.BYTE_ARRAY:
      return 0;
    case PhysicalType.FIXED_LEN_BYTE_ARRAY:
      return spec.typeLength;
    default:
      return 8;
  }
}

/**
 * Bounds of a dictionary-encoded BYTE_ARRAY page: each distinct entry of the page is compared once
 * (`visited` marks the entries this page already compared), so a page of 200,000 values drawn from a
 * handful of strings costs a handful of byte compares.
 */
function dictionaryMinMax(
  bytes: Buffer,
  dictionary: Dictionary,
  visited: Int32Array,
  pageIndex: number,
  page: PageSlice,
): MinMax | undefined {
  if (page.valueCount === 0) return undefined;
  const { indices, starts, ends } = dictionary;
  let minEntry = indices[page.valueStart]!;
  let maxEntry = minEntry;
  for (let k = page.valueStart, end = page.valueStart + page.valueCount; k < end; k++) {
    const entry = indices[k]!;
    if (visited[entry] === pageIndex) continue;
    visited[entry] = pageIndex;
    const start = starts[entry]! + 4;
    const stop = ends[entry]!;
    if (compareRanges(bytes, start, stop, starts[minEntry]! + 4, ends[minEntry]!) < 0) minEntry = entry;
    else if (compareRanges(bytes, start, stop, starts[maxEntry]! + 4, ends[maxEntry]!) > 0) maxEntry = entry;
  }
  return boundedByteArrays(
    bytes,
    starts[minEntry]! + 4,
    ends[minEntry]!,
    starts[maxEntry]! + 4,
    ends[maxEntry]!,
  );
}
