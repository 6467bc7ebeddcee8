/**
 * Decompression bombs built by hand, byte by byte, so a test can send a frame that expands to a
 * gibibyte without ever holding that gibibyte itself. Each builder is checked at a small size
 * against the real decoder (test/end-to-end/decompression-bombs.test.ts), so the big one is
 * exactly what it claims to be.
 */

/** RFC 8878 §3.1.1.2.2: a block holds at most 128 KiB of content. */
const ZSTD_MAX_BLOCK = 128 * 1024;

export interface ZstdBombOptions {
  /** Bytes the blocks expand to. */
  output: number;
  /**
   * Frame_Content_Size written in the header: the truth (default), a lie, or `undefined` for a
   * frame that does not declare it (streaming compressors).
   */
  declaredSize?: number | undefined | 'truth';
}

/**
 * One zstd frame of RLE blocks (a block that stores one byte and repeats it): 4 bytes per
 * 128 KiB of output, so 1 GiB is 32 KiB on the wire.
 */
export function zstdBomb({ output, declaredSize = 'truth' }: ZstdBombOptions): Uint8Array {
  const declared = declaredSize === 'truth' ? output : declaredSize;
  const header: number[] = [0x28, 0xb5, 0x2f, 0xfd];
  if (declared === undefined) {
    // No content size and no single segment: a Window_Descriptor of 2^17 (128 KiB) follows.
    header.push(0x00, 7 << 3);
  } else {
    // Frame_Content_Size_Flag 3 (8 bytes) with Single_Segment: the window is the content size.
    header.push(0xe0);
    const size = new DataView(new ArrayBuffer(8));
    size.setBigUint64(0, BigInt(declared), true);
    header.push(...new Uint8Array(size.buffer));
  }
  const blocks = Math.ceil(output / ZSTD_MAX_BLOCK);
  const frame = new Uint8Array(header.length + blocks * 4);
  frame.set(header, 0);
  let offset = header.length;
  for (let block = 0; block < blocks; block++) {
    const size = Math.min(ZSTD_MAX_BLOCK, output - block * ZSTD_MAX_BLOCK);
    const last = block === blocks - 1 ? 1 : 0;
    // Block_Header: Last_Block (1 bit), Block_Type 1 = RLE (2 bits), Block_Size (21 bits).
    const blockHeader = last | (1 << 1) | (size << 3);
    frame[offset++] = blockHeader & 0xff;
    frame[offset++] = (blockHeader >>> 8) & 0xff;
    frame[offset++] = (blockHeader >>> 16) & 0xff;
    frame[offset++] = 0; // the byte repeated
  }
  return frame;
}

/**
 * One LZ4 block in lz4-napi's format (a 4-byte little-endian decoded length, then the block):
 * a literal zero, one match of offset 1 that copies it `output - 6` times, and the 5 literals
 * the format requires at the end. A match length is 15 plus a run of 255s, so LZ4 expands at
 * most 255 times: 1 GiB of output is about 4.2 MB of input.
 */
export function lz4Bomb({ output, declaredSize = output }: { output: number; declaredSize?: number }) {
  const matchLength = output - 6;
  if (matchLength < 19) throw new RangeError('an LZ4 bomb needs at least 25 bytes of output');
  let extra = matchLength - 4 - 15;
  const runs = Math.floor(extra / 255);
  extra -= runs * 255;
  const block = new Uint8Array(4 + 1 + 1 + 2 + runs + 1 + 1 + 5);
  new DataView(block.buffer).setUint32(0, declaredSize, true);
  let offset = 4;
  block[offset++] = 0x1f; // 1 literal, match length 15 + more
  block[offset++] = 0; // the literal
  block[offset++] = 1; // offset 1, little-endian
  block[offset++] = 0;
  block.fill(255, offset, offset + runs);
  offset += runs;
  block[offset++] = extra;
  block[offset++] = 0x50; // the last sequence: 5 literals
  return block;
}
