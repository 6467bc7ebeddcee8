/**
 * Just enough of the zstd frame format (RFC 8878 §3.1.1) to bound a decoder before it runs:
 * the header's Frame_Content_Size, and where the frame ends, found by walking block headers
 * without decoding a byte of content.
 */

export const zstdMagic = 0xfd2fb528;
/** Skippable frames use magics 0x184D2A50..0x184D2A5F (RFC 8878 §3.1.2). */
const skippableMagicMask = 0xfffffff0;
const skippableMagic = 0x184d2a50;

export interface ZstdFrameHeader {
  /** Bytes from the magic number to the first block header. */
  headerLength: number;
  /** Undefined when the producer did not declare it (streaming compressors). */
  contentSize: bigint | undefined;
  hasContentChecksum: boolean;
  dictionaryId: number;
  /** Byte offset of the Frame_Header_Descriptor. */
  descriptorOffset: number;
  /** Byte offset where the Frame_Content_Size field is, or would be inserted. */
  contentSizeOffset: number;
}

export class ZstdFrameError extends Error {
  override readonly name = 'ZstdFrameError';
}

const dictionaryIdLengths = [0, 1, 2, 4] as const;

/** Reads the frame header at the start of `bytes`; throws ZstdFrameError when it is not one. */
export function readFrameHeader(bytes: Uint8Array): ZstdFrameHeader {
  if (bytes.length < 4) throw new ZstdFrameError('shorter than a zstd magic number');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  if ((magic & skippableMagicMask) >>> 0 === skippableMagic) {
    throw new ZstdFrameError('a skippable frame where a zstd frame was expected');
  }
  if (magic !== zstdMagic) throw new ZstdFrameError('no zstd magic number');
  if (bytes.length < 5) throw new ZstdFrameError('truncated frame header');

  const descriptor = bytes[4]!;
  const contentSizeFlag = descriptor >>> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  // §3.1.1.1.1.4: "a decoder compliant with this specification version shall ensure it is not set".
  if ((descriptor & 0x08) !== 0) throw new ZstdFrameError('reserved bit set in the frame header');
  const hasContentChecksum = (descriptor & 0x04) !== 0;
  const dictionaryIdLength = dictionaryIdLengths[descriptor & 0x03]!;
  const contentSizeLength = contentSizeFlag === 0 ? (singleSegment ? 1 : 0) : 1 << contentSizeFlag;

  let offset = 5 + (singleSegment ? 0 : 1);
  const headerLength = offset + dictionaryIdLength + contentSizeLength;
  if (bytes.length < headerLength) throw new ZstdFrameError('truncated frame header');

  let dictionaryId = 0;
  for (let i = 0; i < dictionaryIdLength; i++) dictionaryId += bytes[offset + i]! * 2 ** (8 * i);
  offset += dictionaryIdLength;

  let contentSize: bigint | undefined;
  if (contentSizeLength === 1) contentSize = BigInt(bytes[offset]!);
  // §3.1.1.1.4: the 2-byte form is offset by 256.
  else if (contentSizeLength === 2) contentSize = BigInt(view.getUint16(offset, true) + 256);
  else if (contentSizeLength === 4) contentSize = BigInt(view.getUint32(offset, true));
  else if (contentSizeLength === 8) contentSize = view.getBigUint64(offset, true);

  return {
    headerLength,
    contentSize,
    hasContentChecksum,
    dictionaryId,
    descriptorOffset: 4,
    contentSizeOffset: offset,
  };
}

/**
 * Returns the length of the frame that starts at offset 0, walking its block headers
 * (§3.1.1.2). Throws ZstdFrameError when the bytes end before the last block does.
 */
export function measureFrame(bytes: Uint8Array, header: ZstdFrameHeader): number {
  let offset = header.headerLength;
  for (;;) {
    if (offset + 3 > bytes.length) throw new ZstdFrameError('truncated block header');
    const blockHeader = bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16);
    offset += 3;
    const lastBlock = (blockHeader & 1) === 1;
    const blockType = (blockHeader >>> 1) & 3;
    const blockSize = blockHeader >>> 3;
    if (blockType === 3) throw new ZstdFrameError('reserved block type');
    // An RLE block stores one byte, repeated blockSize times on output.
    offset += blockType === 1 ? 1 : blockSize;
    if (offset > bytes.length) throw new ZstdFrameError('truncated block');
    if (lastBlock) break;
  }
  if (header.hasContentChecksum) offset += 4;
  if (offset > bytes.length) throw new ZstdFrameError('truncated content checksum');
  return offset;
}

/**
 * Returns a copy of `frame` whose header declares `contentSize`, for producers that leave it
 * out. Blocks do not depend on the header bytes, so only the header changes.
 */
export function withContentSize(frame: Uint8Array, contentSize: number): Uint8Array {
  const header = readFrameHeader(frame);
  if (header.contentSize !== undefined) return frame;
  // Without Single_Segment, flag 0 means "absent" and the 2-byte form starts at 256 (§3.1.1.1.4).
  const flag = contentSize > 0xffffffff ? 3 : contentSize >= 256 && contentSize < 65_536 + 256 ? 1 : 2;
  const fieldLength = 1 << flag;
  // Every byte of `out` is written below, so it needs no zeroing: one pass over the frame, not two.
  const out: Uint8Array = Buffer.allocUnsafeSlow(frame.length + fieldLength);
  out.set(frame.subarray(0, header.contentSizeOffset), 0);
  out[header.descriptorOffset] = (frame[header.descriptorOffset]! & 0x3f) | (flag << 6);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (flag === 1) view.setUint16(header.contentSizeOffset, contentSize - 256, true);
  else if (flag === 2) view.setUint32(header.contentSizeOffset, contentSize, true);
  else view.setBigUint64(header.contentSizeOffset, BigInt(contentSize), true);
  out.set(frame.subarray(header.contentSizeOffset), header.contentSizeOffset + fieldLength);
  return out;
}
