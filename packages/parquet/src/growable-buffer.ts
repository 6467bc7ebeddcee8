/**
 * A byte buffer that doubles when full, reused across row groups so steady-state encoding allocates
 * nothing per value and almost nothing per row group.
 */
export class GrowableBuffer {
  bytes: Buffer;
  view: DataView;
  /** Bytes in use; callers in hot loops keep their own cursor and store it back here. */
  length = 0;

  constructor(initialCapacity = 64 * 1024) {
    // allocUnsafeSlow: never a slice of Node's shared pool, and no zero-fill we would overwrite anyway.
    this.bytes = Buffer.allocUnsafeSlow(initialCapacity);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  get capacity(): number {
    return this.bytes.length;
  }

  /** Makes room for `extra` bytes after `length`. Invalidates previously read `bytes`/`view`. */
  reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.bytes.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(needed, this.bytes.length * 2));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }
}

/** A zero-initialised bitmap (LSB-first within each byte) that grows, keeping its contents. */
export function growBits(bits: Uint8Array, bitCount: number): Uint8Array {
  const needed = (bitCount + 7) >>> 3;
  if (needed <= bits.length) return bits;
  const grown = new Uint8Array(Math.max(needed, bits.length * 2));
  grown.set(bits);
  return grown;
}

/** Clears bits [from, to) of an LSB-first bitmap. */
export function clearBits(bits: Uint8Array, from: number, to: number): void {
  if (to <= from) return;
  const firstByte = from >>> 3;
  const lastByte = Math.min((to + 7) >>> 3, bits.length);
  if (firstByte >= lastByte) return;
  // The byte holding `from` keeps its lower bits; everything after it (up to `to`, rounded up) is unused.
  bits[firstByte] = bits[firstByte]! & ((1 << (from & 7)) - 1);
  bits.fill(0, firstByte + 1, lastByte);
}

/**
 * Copies `count` bits starting at bit `from` of `src` into `dst` starting at byte `offset`, LSB first;
 * returns the number of bytes written. Pages can start mid-byte (a page boundary falls on any row), so
 * definition levels and boolean values are re-aligned to byte 0 of the page here.
 */
export function copyBits(
  src: Uint8Array,
  from: number,
  count: number,
  dst: Uint8Array,
  offset: number,
): number {
  const byteCount = (count + 7) >>> 3;
  const start = from >>> 3;
  const shift = from & 7;
  if (shift === 0) {
    dst.set(src.subarray(start, start + byteCount), offset);
  } else {
    for (let i = 0; i < byteCount; i++) {
      const lo = src[start + i] ?? 0;
      const hi = src[start + i + 1] ?? 0;
      dst[offset + i] = ((lo >>> shift) | (hi << (8 - shift))) & 0xff;
    }
  }
  // Bits past `count` in the last byte are padding; zero them so output is deterministic.
  const tail = count & 7;
  if (tail !== 0) dst[offset + byteCount - 1] = dst[offset + byteCount - 1]! & ((1 << tail) - 1);
  return byteCount;
}
