/**
 * Turns one column's buffered row group (PLAIN values, definition bitmap, page cuts) into the pages of
 * its column chunk: dictionary-encoded when the dictionary pays and stays small, PLAIN otherwise, with
 * min/max/null_count statistics per page and for the chunk.
 *
 * Dictionary rule: every column but BOOLEAN tries one. The chunk stays PLAIN (whole, so no reader meets
 * a mid-chunk switch) when the dictionary's PLAIN size passes `dictionaryPageSize` (default 1 MiB, as
 * parquet-mr and Arrow), when it would pass 2^20 entries, or when the first 4096 values (or all of
 * them) are more than 3/4 distinct (an id, a timestamp, free text: a dictionary would only add bytes
 * and time).
 */
import type { ColumnEncoder, PageSlice } from './column-encoder.js';
import { definitionLevelsSize, writeDefinitionLevels } from './definition-levels.js';
import { Encoding, PhysicalType } from './format-constants.js';
import { GrowableBuffer } from './growable-buffer.js';
import { ListColumnEncoder } from './list-encoder.js';
import { bitWidthFor, writeHybrid } from './rle-hybrid.js';
import type { ColumnSpec } from './schema.js';
import {
  booleanMinMax,
  boundedByteArrays,
  byteArrayMinMax,
  doubleMinMax,
  fixedMinMax,
  int32MinMax,
  int64MinMax,
  type MinMax,
  mergeMinMax,
} from './statistics.js';

export const DEFAULT_DICTIONARY_PAGE_SIZE = 1 << 20;
const MAX_DICTIONARY_ENTRIES = 1 << 20;
const SAMPLE_VALUES = 4096;
const SAMPLE_MAX_DISTINCT = 3072;
const MAX_DISTINCT_RATIO = 0.75;

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

interface Dictionary {
  /** Entry of each non-null value, in value order. */
  indices: Uint32Array;
  /** PLAIN byte range of each entry's first occurrence (length prefix included for BYTE_ARRAY). */
  starts: number[];
  ends: number[];
  bytes: number;
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
      : buildDictionary(encoder, dictionaryPageSize);
  const ranks =
    dictionary && spec.physicalType === PhysicalType.BYTE_ARRAY
      ? rankEntries(encoder.plainBytes, dictionary)
      : undefined;
  const bitWidth = dictionary ? bitWidthFor(dictionary.starts.length) : 0;
  const pages = slices.map((page): EncodedPage => {
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
      minMax = ranks
        ? dictionaryMinMax(encoder.plainBytes, dictionary, ranks, page)
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

function buildDictionary(encoder: ChunkEncoder, limitBytes: number): Dictionary | undefined {
  const count = encoder.valueCount;
  if (count === 0) return undefined;
  const bytes = encoder.plainBytes;
  const physical = encoder.spec.physicalType;
  const width =
    physical === PhysicalType.INT32
      ? 4
      : physical === PhysicalType.BYTE_ARRAY
        ? 0
        : physical === PhysicalType.FIXED_LEN_BYTE_ARRAY
          ? encoder.spec.typeLength
          : 8;
  const entries = new Map<number | string, number>();
  const indices = new Uint32Array(count);
  const starts: number[] = [];
  const ends: number[] = [];
  let dictBytes = 0;
  let p = 0;
  for (let k = 0; k < count; k++) {
    let key: number | string;
    const start = p;
    if (width === 0) {
      const length = bytes.readUInt32LE(p);
      p += 4 + length;
      key = bytes.toString('latin1', start + 4, p);
    } else {
      p += width;
      key = fixedKey(bytes, start, width, physical);
    }
    let entry = entries.get(key);
    if (entry === undefined) {
      entry = starts.length;
      entries.set(key, entry);
      starts.push(start);
      ends.push(p);
      dictBytes += p - start;
      if (dictBytes > limitBytes || entry >= MAX_DICTIONARY_ENTRIES) return undefined;
    }
    indices[k] = entry;
    if (k === SAMPLE_VALUES - 1 && count > 2 * SAMPLE_VALUES && starts.length > SAMPLE_MAX_DISTINCT) {
      return undefined;
    }
  }
  if (starts.length > count * MAX_DISTINCT_RATIO) return undefined;
  return { indices, starts, ends, bytes: dictBytes };
}

/**
 * A Map key equal for equal PLAIN bytes: the number itself where that is exact (INT32, doubles other than
 * 0 and NaN, INT64 within ±2^52), else the bytes as a latin1 string (a string never equals a number).
 */
function fixedKey(bytes: Buffer, at: number, width: number, physical: PhysicalType): number | string {
  if (physical === PhysicalType.INT32) return bytes.readInt32LE(at);
  if (physical === PhysicalType.INT64) {
    const hi = bytes.readInt32LE(at + 4);
    if (hi >= -0x100000 && hi < 0x100000) return hi * 4294967296 + bytes.readUInt32LE(at);
  } else if (physical === PhysicalType.DOUBLE) {
    const v = bytes.readDoubleLE(at);
    if (v !== 0 && !Number.isNaN(v)) return v;
  }
  return bytes.toString('latin1', at, at + width);
}

function dictionaryBody(bytes: Buffer, dictionary: Dictionary): Uint8Array {
  const body = Buffer.allocUnsafe(dictionary.bytes);
  let pos = 0;
  for (let e = 0; e < dictionary.starts.length; e++) {
    pos += bytes.copy(body, pos, dictionary.starts[e]!, dictionary.ends[e]!);
  }
  return body;
}

/** Rank of each BYTE_ARRAY entry in unsigned bytewise order, so a page's bounds are integer compares. */
function rankEntries(bytes: Buffer, dictionary: Dictionary): Uint32Array {
  const { starts, ends } = dictionary;
  const order = Array.from(starts.keys()).sort((a, b) =>
    bytes.compare(bytes, starts[b]! + 4, ends[b]!, starts[a]! + 4, ends[a]!),
  );
  const ranks = new Uint32Array(starts.length);
  order.forEach((entry, rank) => {
    ranks[entry] = rank;
  });
  return ranks;
}

function dictionaryMinMax(
  bytes: Buffer,
  dictionary: Dictionary,
  ranks: Uint32Array,
  page: PageSlice,
): MinMax | undefined {
  if (page.valueCount === 0) return undefined;
  const { indices, starts, ends } = dictionary;
  let minEntry = indices[page.valueStart]!;
  let maxEntry = minEntry;
  let minRank = ranks[minEntry]!;
  let maxRank = minRank;
  for (let k = page.valueStart + 1, end = page.valueStart + page.valueCount; k < end; k++) {
    const entry = indices[k]!;
    const rank = ranks[entry]!;
    if (rank < minRank) {
      minRank = rank;
      minEntry = entry;
    } else if (rank > maxRank) {
      maxRank = rank;
      maxEntry = entry;
    }
  }
  return boundedByteArrays(
    bytes,
    starts[minEntry]! + 4,
    ends[minEntry]!,
    starts[maxEntry]! + 4,
    ends[maxEntry]!,
  );
}
