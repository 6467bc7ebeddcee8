/**
 * Definition levels of a flat column page, in the RLE / bit-packed hybrid encoding with bit width 1,
 * prefixed by its 4-byte little-endian length as data page v1 requires
 * (https://github.com/apache/parquet-format/blob/master/Encodings.md#run-length-encoding--bit-packing-hybrid-rle--3).
 *
 * Two shapes only, which keeps this simple and still compact where it matters:
 * - no NULLs (or only NULLs) in the page: one RLE run, `varint(count << 1)` then the level in one byte;
 * - mixed: one bit-packed run over the whole page, `varint(groups << 1 | 1)` then the bitmap, 8 levels per
 *   byte, which is byte-for-byte the bitmap the column encoder already keeps.
 */
import { copyBits } from './growable-buffer.js';

export function definitionLevelsSize(rowCount: number, nullCount: number): number {
  if (nullCount === 0 || nullCount === rowCount) return 4 + varintSize(rowCount * 2) + 1;
  const groups = Math.ceil(rowCount / 8);
  return 4 + varintSize(groups * 2 + 1) + groups;
}

/** Writes the length-prefixed levels for rows [rowStart, rowStart + rowCount) of `bits`; returns bytes written. */
export function writeDefinitionLevels(
  out: Uint8Array,
  offset: number,
  bits: Uint8Array,
  rowStart: number,
  rowCount: number,
  nullCount: number,
): number {
  let pos = offset + 4;
  if (nullCount === 0 || nullCount === rowCount) {
    pos = writeVarint(out, pos, rowCount * 2);
    out[pos++] = nullCount === 0 ? 1 : 0;
  } else {
    const groups = Math.ceil(rowCount / 8);
    pos = writeVarint(out, pos, groups * 2 + 1);
    pos += copyBits(bits, rowStart, rowCount, out, pos);
  }
  const length = pos - offset - 4;
  out[offset] = length & 0xff;
  out[offset + 1] = (length >>> 8) & 0xff;
  out[offset + 2] = (length >>> 16) & 0xff;
  out[offset + 3] = (length >>> 24) & 0xff;
  return pos - offset;
}

function varintSize(value: number): number {
  let size = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 0x80)) size++;
  return size;
}

function writeVarint(out: Uint8Array, offset: number, value: number): number {
  let pos = offset;
  let v = value;
  while (v >= 0x80) {
    out[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[pos++] = v;
  return pos;
}
