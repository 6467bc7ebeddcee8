/**
 * The RLE / bit-packed hybrid encoding of dictionary indices
 * (https://github.com/apache/parquet-format/blob/master/Encodings.md#run-length-encoding--bit-packing-hybrid-rle--3):
 * runs of 8 or more equal indices become RLE runs, everything between them one bit-packed run (groups of 8
 * values). The last bit-packed run is padded with zeros, which readers ignore past the page's value count.
 */
import type { GrowableBuffer } from './growable-buffer.js';

/** Bits needed for indices below `count` (at least 1: a 0-bit width trips some readers). */
export function bitWidthFor(count: number): number {
  let width = 1;
  while (count > 2 ** width) width++;
  return width;
}

/** Appends the hybrid encoding of `indices[start .. start + count)` to `out`. */
export function writeHybrid(
  indices: Uint32Array,
  start: number,
  count: number,
  bitWidth: number,
  out: GrowableBuffer,
): void {
  const end = start + count;
  // Worst case: all bit-packed, plus run headers.
  out.reserve(Math.ceil(((count + 8) * bitWidth) / 8) + 16 + Math.ceil(count / 8) * 6);
  let literalStart = start;
  let i = start;
  while (i < end) {
    const value = indices[i]!;
    let run = 1;
    while (i + run < end && indices[i + run] === value) run++;
    if (run >= 8) {
      // Literals must come in whole groups of 8: the run lends its first values to fill the last group.
      const pad = (8 - ((i - literalStart) & 7)) & 7;
      if (run - pad >= 8) {
        if (i + pad > literalStart) writeBitPacked(indices, literalStart, i + pad, bitWidth, out);
        writeRle(value, run - pad, bitWidth, out);
        i += run;
        literalStart = i;
        continue;
      }
    }
    i += run;
  }
  if (end > literalStart) writeBitPacked(indices, literalStart, end, bitWidth, out);
}

function writeRle(value: number, run: number, bitWidth: number, out: GrowableBuffer): void {
  writeVarint(out, run * 2);
  const bytes = out.bytes;
  let pos = out.length;
  for (let b = 0, v = value; b < bitWidth; b += 8, v = Math.floor(v / 256)) bytes[pos++] = v & 0xff;
  out.length = pos;
}

/** One bit-packed run over `[from, to)`, padded with zeros to a multiple of 8 values, LSB first. */
function writeBitPacked(
  indices: Uint32Array,
  from: number,
  to: number,
  bitWidth: number,
  out: GrowableBuffer,
): void {
  const groups = Math.ceil((to - from) / 8);
  writeVarint(out, groups * 2 + 1);
  const bytes = out.bytes;
  let pos = out.length;
  let acc = 0;
  let bits = 0;
  const padded = from + groups * 8;
  for (let k = from; k < padded; k++) {
    acc |= (k < to ? indices[k]! : 0) << bits;
    bits += bitWidth;
    while (bits >= 8) {
      bytes[pos++] = acc & 0xff;
      acc >>>= 8;
      bits -= 8;
    }
  }
  out.length = pos;
}

function writeVarint(out: GrowableBuffer, value: number): void {
  const bytes = out.bytes;
  let pos = out.length;
  let v = value;
  while (v >= 0x80) {
    bytes[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  bytes[pos++] = v;
  out.length = pos;
}
