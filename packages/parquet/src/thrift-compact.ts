/**
 * A minimal writer for the Thrift compact protocol
 * (https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md), just enough for
 * Parquet's page headers and footer. Parquet metadata is small (a few KB per row group), so clarity
 * wins over speed here; the hot path is the column data, not this.
 */

/** Compact-protocol type ids as they appear in field headers and list headers. */
export const CompactType = {
  BOOLEAN_TRUE: 1,
  BOOLEAN_FALSE: 2,
  BYTE: 3,
  I16: 4,
  I32: 5,
  I64: 6,
  DOUBLE: 7,
  BINARY: 8,
  LIST: 9,
  SET: 10,
  MAP: 11,
  STRUCT: 12,
} as const;
export type CompactType = (typeof CompactType)[keyof typeof CompactType];

const utf8 = new TextEncoder();

export class ThriftCompactWriter {
  private bytes = new Uint8Array(256);
  private pos = 0;
  /** Field ids are delta-encoded against the previous field of the same struct, hence one per nesting level. */
  private lastFieldId = 0;
  private readonly fieldIdStack: number[] = [];

  get length(): number {
    return this.pos;
  }

  /** Copies the encoded bytes out, so the writer may be reused or dropped. */
  toBytes(): Uint8Array {
    return this.bytes.slice(0, this.pos);
  }

  i16(fieldId: number, value: number): this {
    this.fieldHeader(CompactType.I16, fieldId);
    this.varint(zigzag32(value));
    return this;
  }

  i32(fieldId: number, value: number): this {
    this.fieldHeader(CompactType.I32, fieldId);
    this.varint(zigzag32(value));
    return this;
  }

  i64(fieldId: number, value: number | bigint): this {
    this.fieldHeader(CompactType.I64, fieldId);
    this.varint64(value);
    return this;
  }

  bool(fieldId: number, value: boolean): this {
    // The compact protocol folds a field's boolean value into its type nibble.
    this.fieldHeader(value ? CompactType.BOOLEAN_TRUE : CompactType.BOOLEAN_FALSE, fieldId);
    return this;
  }

  string(fieldId: number, value: string): this {
    return this.binary(fieldId, utf8.encode(value));
  }

  binary(fieldId: number, value: Uint8Array): this {
    this.fieldHeader(CompactType.BINARY, fieldId);
    this.rawBinary(value);
    return this;
  }

  /** Starts a struct-typed field; close it with `endStruct()`. */
  beginStruct(fieldId: number): this {
    this.fieldHeader(CompactType.STRUCT, fieldId);
    return this.beginStructValue();
  }

  /** Starts a struct that has no field header of its own: a list element. */
  beginStructValue(): this {
    this.fieldIdStack.push(this.lastFieldId);
    this.lastFieldId = 0;
    return this;
  }

  endStruct(): this {
    this.byte(0); // STOP
    this.lastFieldId = this.fieldIdStack.pop() ?? 0;
    return this;
  }

  /** Writes a list field header; the caller then writes exactly `size` elements of `elementType`. */
  beginList(fieldId: number, elementType: CompactType, size: number): this {
    this.fieldHeader(CompactType.LIST, fieldId);
    if (size < 15) {
      this.byte((size << 4) | elementType);
    } else {
      this.byte(0xf0 | elementType);
      this.varint(size);
    }
    return this;
  }

  listI32(value: number): this {
    this.varint(zigzag32(value));
    return this;
  }

  listString(value: string): this {
    this.rawBinary(utf8.encode(value));
    return this;
  }

  private fieldHeader(type: CompactType, fieldId: number): void {
    const delta = fieldId - this.lastFieldId;
    if (delta > 0 && delta <= 15) {
      this.byte((delta << 4) | type);
    } else {
      this.byte(type);
      this.varint(zigzag32(fieldId)); // i16 field id, zigzag varint
    }
    this.lastFieldId = fieldId;
  }

  private rawBinary(value: Uint8Array): void {
    this.varint(value.length);
    this.reserve(value.length);
    this.bytes.set(value, this.pos);
    this.pos += value.length;
  }

  private byte(value: number): void {
    this.reserve(1);
    this.bytes[this.pos++] = value;
  }

  /** Unsigned varint of a non-negative number up to 2^53 (arithmetic, not bit ops, to go past 32 bits). */
  private varint(value: number): void {
    this.reserve(10);
    let v = value;
    while (v >= 0x80) {
      this.bytes[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.bytes[this.pos++] = v;
  }

  private varint64(value: number | bigint): void {
    if (typeof value === 'number' && Number.isSafeInteger(value)) {
      // zigzag: 0,-1,1,-2 -> 0,1,2,3; exact in doubles for |value| < 2^52, and file offsets/counts stay far below.
      if (Math.abs(value) < 2 ** 52) {
        this.varint(value >= 0 ? value * 2 : -value * 2 - 1);
        return;
      }
    }
    let v = BigInt(value);
    v = v >= 0n ? v << 1n : (-v << 1n) - 1n;
    this.reserve(10);
    while (v >= 0x80n) {
      this.bytes[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.bytes[this.pos++] = Number(v);
  }

  private reserve(extra: number): void {
    if (this.pos + extra <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.pos + extra));
    grown.set(this.bytes.subarray(0, this.pos));
    this.bytes = grown;
  }
}

function zigzag32(value: number): number {
  // `>>> 0` keeps the result unsigned so varint() sees a non-negative number.
  return ((value << 1) ^ (value >> 31)) >>> 0;
}
