import { describe, expect, it } from 'vitest';
import { decimalToUnscaled } from '../src/decimal.js';
import { definitionLevelsSize, writeDefinitionLevels } from '../src/definition-levels.js';
import { forecastDistinct } from '../src/dictionary.js';
import { appendBits, copyBits, countBits, SetBitCursor, setBits } from '../src/growable-buffer.js';
import { daysFromCivil, timestampToMicros } from '../src/temporal.js';
import { CompactType, ThriftCompactWriter } from '../src/thrift-compact.js';

describe('decimalToUnscaled', () => {
  it.each([
    ['-12345.67', 2, -1234567],
    ['0.01', 2, 1],
    ['0', 2, 0],
    ['-0.00', 2, 0],
    ['1.5', 0, 2], // half away from zero
    ['-1.5', 0, -2],
    ['2.449', 2, 245],
    ['2.444', 2, 244],
    ['1e-2', 2, 1],
    ['1.23E+3', 2, 123000],
    ['12', 4, 120000],
  ] as const)('%s at scale %i -> %s', (text, scale, expected) => {
    expect(Number(decimalToUnscaled(text, 18, scale))).toBe(expected);
  });

  it('is exact past 2^53 with strings and bigints', () => {
    expect(decimalToUnscaled('9999999999999999.99', 18, 2)).toBe(999999999999999999n);
    expect(decimalToUnscaled('-9999999999999999.99', 18, 2)).toBe(-999999999999999999n);
    expect(decimalToUnscaled('123456789012345.678', 18, 3)).toBe(123456789012345678n);
    expect(decimalToUnscaled(123456789012n, 18, 6)).toBe(123456789012000000n);
  });

  it('converts numbers through their shortest decimal form, not binary float error', () => {
    expect(decimalToUnscaled(0.1, 18, 2)).toBe(10);
    expect(decimalToUnscaled(1.005, 18, 2)).toBe(101); // 1.005 * 100 === 100.49999999999999
    expect(decimalToUnscaled(0.1 + 0.2, 18, 2)).toBe(30);
    expect(Number(decimalToUnscaled(1e-7, 18, 2))).toBe(0); // '1e-7' takes the exact BigInt path
    expect(decimalToUnscaled(-42, 18, 3)).toBe(-42000);
  });

  it('rejects values beyond the precision and non-decimals', () => {
    expect(() => decimalToUnscaled('1000', 5, 2)).toThrow(RangeError);
    expect(() => decimalToUnscaled('1e400', 18, 2)).toThrow(RangeError);
    expect(() => decimalToUnscaled(1e21, 18, 0)).toThrow(RangeError);
    for (const bad of ['', '-', '.', '1,5', ' 1x', '0x10', 'NaN']) {
      expect(() => decimalToUnscaled(bad, 18, 2), bad).toThrow(TypeError);
    }
  });
});

describe('temporal conversions', () => {
  it('daysFromCivil agrees with Date across eras', () => {
    for (const [y, m, d] of [
      [1970, 1, 1],
      [2000, 2, 29],
      [1600, 3, 1],
      [2100, 12, 31],
      [1, 1, 1],
      [-1, 6, 15],
    ] as const) {
      expect(daysFromCivil(y, m, d)).toBe(new Date(0).setUTCFullYear(y, m - 1, d) / 86_400_000);
    }
  });

  it('rounds fractional milliseconds to microseconds and rejects out-of-range instants', () => {
    expect(timestampToMicros(1.0015)).toBe(1002);
    expect(timestampToMicros(-1)).toBe(-1000);
    expect(() => timestampToMicros(1e20)).toThrow(RangeError);
    expect(() => timestampToMicros('2024-13-01')).toThrow(TypeError);
  });
});

describe('definition levels (RLE / bit-packed hybrid, bit width 1)', () => {
  it('writes one RLE run when the page has no NULLs', () => {
    const out = new Uint8Array(16);
    const n = writeDefinitionLevels(out, 0, new Uint8Array(0), 0, 300, 0);
    expect(n).toBe(definitionLevelsSize(300, 0));
    // length 3, then varint(300 << 1) = 0xd8 0x04, then the level 1
    expect([...out.subarray(0, n)]).toEqual([3, 0, 0, 0, 0xd8, 0x04, 1]);
  });

  it('writes one bit-packed run, re-aligned from a mid-byte row', () => {
    const bits = Uint8Array.from([0b1010_1100, 0b0000_0111]);
    const out = new Uint8Array(16);
    const n = writeDefinitionLevels(out, 0, bits, 2, 10, 4);
    expect(n).toBe(definitionLevelsSize(10, 4));
    // 2 groups of 8 -> header (2 << 1) | 1 = 5; levels of rows 2..11 shifted down, padding zeroed
    expect([...out.subarray(0, n)]).toEqual([3, 0, 0, 0, 5, 0b1110_1011, 0b0000_0001]);
  });

  it('copyBits handles every shift', () => {
    const src = Uint8Array.from({ length: 40 }, (_, i) => (i * 37 + 11) & 0xff);
    const bit = (a: Uint8Array, i: number) => (a[i >> 3]! >> (i & 7)) & 1;
    for (let from = 0; from < 16; from++) {
      for (const count of [1, 7, 8, 9, 63, 200]) {
        const dst = new Uint8Array(40).fill(0xff);
        const bytes = copyBits(src, from, count, dst, 1);
        expect(bytes).toBe(Math.ceil(count / 8));
        for (let i = 0; i < bytes * 8; i++) {
          expect(bit(dst.subarray(1), i)).toBe(i < count ? bit(src, from + i) : 0);
        }
      }
    }
  });
});

describe('bitmaps of column batches', () => {
  const src = Uint8Array.from({ length: 40 }, (_, i) => (i * 37 + 11) & 0xff);
  const bit = (a: Uint8Array, i: number) => (a[i >> 3]! >> (i & 7)) & 1;
  /** A chunk bitmap holding `at` bits already (all set), clear after them. */
  const holding = (at: number) => {
    const dst = new Uint8Array(64);
    setBits(dst, 0, at);
    return dst;
  };

  it('appendBits lands at every bit offset, keeps the bits before and ignores src past count', () => {
    for (let at = 0; at < 16; at++) {
      for (const count of [0, 1, 7, 8, 9, 63, 200]) {
        const dst = holding(at);
        appendBits(src, count, dst, at);
        for (let i = 0; i < dst.length * 8; i++) {
          expect(bit(dst, i), `at ${at}, count ${count}, bit ${i}`).toBe(
            i < at ? 1 : i < at + count ? bit(src, i - at) : 0,
          );
        }
      }
    }
  });

  it('setBits sets exactly [from, to)', () => {
    for (const [from, to] of [
      [0, 0],
      [3, 5],
      [5, 8],
      [7, 9],
      [8, 24],
      [3, 61],
    ] as const) {
      const bits = new Uint8Array(10);
      setBits(bits, from, to);
      for (let i = 0; i < 80; i++) expect(bit(bits, i)).toBe(i >= from && i < to ? 1 : 0);
    }
  });

  it('countBits counts only the first count bits', () => {
    for (const count of [0, 1, 7, 8, 9, 100, 320]) {
      let expected = 0;
      for (let i = 0; i < count; i++) expected += bit(src, i);
      expect(countBits(src, count)).toBe(expected);
    }
  });

  it('SetBitCursor finds the k-th set bit for increasing k, skipping in any steps', () => {
    const positions: number[] = [];
    for (let i = 0; i < 320; i++) if (bit(src, i)) positions.push(i);
    for (const step of [1, 2, 7, 33]) {
      const cursor = new SetBitCursor(src);
      for (let k = 0; k < positions.length; k += step) expect(cursor.indexOf(k)).toBe(positions[k]);
    }
    const none = new SetBitCursor(undefined);
    expect([0, 5, 900].map((k) => none.indexOf(k))).toEqual([0, 5, 900]);
  });
});

describe('ThriftCompactWriter', () => {
  it('encodes fields, long deltas, lists, nested structs and i64 per the compact protocol', () => {
    const w = new ThriftCompactWriter();
    w.i32(1, -1)
      .bool(2, true)
      .i64(20, 2 ** 40)
      .beginList(21, CompactType.I32, 16);
    for (let i = 0; i < 16; i++) w.listI32(i);
    w.beginStruct(22)
      .string(1, 'é')
      .endStruct()
      .i64(23, -(2n ** 63n))
      .endStruct();
    const bytes = [...w.toBytes()];
    expect(bytes.slice(0, 3)).toEqual([0x15, 0x01, 0x11]); // delta 1 i32 zigzag(-1)=1; delta 1 BOOLEAN_TRUE
    // field 20 is 18 past field 2: long form, type byte then zigzag varint field id (40)
    expect(bytes.slice(3, 5)).toEqual([0x06, 40]);
    expect(bytes.slice(5, 11)).toEqual([0x80, 0x80, 0x80, 0x80, 0x80, 0x40]); // zigzag(2^40) = 2^41
    expect(bytes.slice(11, 13)).toEqual([0x19, 0xf5]); // list, size >= 15: 0xf0 | I32, then varint 16
    expect(bytes[13]).toBe(16);
    const tail = bytes.slice(14 + 16);
    expect(tail.slice(0, 5)).toEqual([0x1c, 0x18, 2, 0xc3, 0xa9]); // struct; string 'é'
    expect(tail[5]).toBe(0); // nested STOP
    expect(tail[6]).toBe(0x16); // field 23, delta 1 from 22, i64
    expect(tail.slice(7, 17)).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(tail[17]).toBe(0);
  });
});

describe('forecastDistinct', () => {
  it('forecasts a pool from a sample drawn from it', () => {
    // 4096 draws from 20,000 values see about 3,704 of them; from 1,000 values, about 983.
    expect(forecastDistinct(4096, 3704, 200_000)).toBeGreaterThan(19_500);
    expect(forecastDistinct(4096, 3704, 200_000)).toBeLessThan(20_500);
    expect(forecastDistinct(4096, 983, 1_000_000)).toBeGreaterThan(950);
    expect(forecastDistinct(4096, 983, 1_000_000)).toBeLessThan(1_050);
    expect(forecastDistinct(4096, 12, 1_000_000)).toBeCloseTo(12, 0);
  });

  it('forecasts every value distinct when the sample was, and never more than the values', () => {
    expect(forecastDistinct(4096, 4096, 200_000)).toBe(200_000);
    expect(forecastDistinct(4096, 4095, 5_000)).toBeLessThanOrEqual(5_000);
  });
});
