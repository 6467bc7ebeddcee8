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

/** Sets bits [from, to) of an LSB-first bitmap (a run of non-null rows). */
export function setBits(bits: Uint8Array, from: number, to: number): void {
  let i = from;
  for (; i < to && (i & 7) !== 0; i++) bits[i >>> 3]! |= 1 << (i & 7);
  const wholeEnd = to - (to & 7);
  if (i < wholeEnd) {
    bits.fill(0xff, i >>> 3, wholeEnd >>> 3);
    i = wholeEnd;
  }
  for (; i < to; i++) bits[i >>> 3]! |= 1 << (i & 7);
}

/**
 * Copies bits [0, count) of `src` into `dst` from bit `at` on, LSB first: a batch's validity appended to a
 * chunk's definition bitmap, which can end mid-byte. `dst` must be clear from bit `at` on (it is filled in
 * order and cleared on reset), so shifted bytes can be ORed in. Bits of `src` past `count` are ignored:
 * the padding of a batch's last validity byte is not promised to be zero.
 */
export function appendBits(src: Uint8Array, count: number, dst: Uint8Array, at: number): void {
  const first = at >>> 3;
  const shift = at & 7;
  const whole = count >>> 3;
  const tailMask = (1 << (count & 7)) - 1;
  if (shift === 0) {
    dst.set(src.subarray(0, whole), first);
    if (tailMask !== 0) dst[first + whole] = src[whole]! & tailMask;
    return;
  }
  const byteCount = (count + 7) >>> 3;
  for (let i = 0; i < byteCount; i++) {
    const byte = i === whole ? src[i]! & tailMask : src[i]!;
    dst[first + i]! |= (byte << shift) & 0xff;
    const carry = byte >>> (8 - shift);
    if (carry !== 0) dst[first + i + 1]! |= carry;
  }
}

/** Set bits among bits [0, count) of an LSB-first bitmap. */
export function countBits(bits: Uint8Array, count: number): number {
  const whole = count >>> 3;
  let total = 0;
  for (let i = 0; i < whole; i++) total += popcount8(bits[i]!);
  if ((count & 7) !== 0) total += popcount8(bits[whole]! & ((1 << (count & 7)) - 1));
  return total;
}

/**
 * Answers "which bit is the k-th set one?" for increasing k in one forward pass: the row of a batch's k-th
 * non-null value, asked only where a page is cut. An undefined bitmap has every bit set.
 */
export class SetBitCursor {
  /** Set bits in the bytes before `byte`. */
  private before = 0;
  private byte = 0;

  constructor(private readonly bits: Uint8Array | undefined) {}

  /** Index of the k-th (0-based) set bit; k must not decrease between calls and must exist. */
  indexOf(k: number): number {
    const bits = this.bits;
    if (bits === undefined) return k;
    let byte = this.byte;
    let before = this.before;
    for (let n = popcount8(bits[byte]!); before + n <= k; n = popcount8(bits[byte]!)) {
      before += n;
      byte++;
    }
    this.byte = byte;
    this.before = before;
    let rest = bits[byte]!;
    for (let skip = k - before; skip > 0; skip--) rest &= rest - 1; // drop the lowest set bit
    return byte * 8 + (31 - Math.clz32(rest & -rest));
  }
}

function popcount8(byte: number): number {
  const pairs = byte - ((byte >>> 1) & 0x55);
  const nibbles = (pairs & 0x33) + ((pairs >>> 2) & 0x33);
  return (nibbles + (nibbles >>> 4)) & 0x0f;
}
