import type { Column } from '@backhaul/core';
import { describe, expect, it } from 'vitest';
import { toJsonRows, toJsonValue } from '../src/index.js';

describe('§5.3 row batches carry JSON-safe values', () => {
  it('keeps safe integers as numbers and sends larger bigints as exact decimal text', () => {
    expect(toJsonValue(42n)).toBe(42);
    expect(toJsonValue(9007199254740993n)).toBe('9007199254740993');
    expect(toJsonValue(-9007199254740993n)).toBe('-9007199254740993');
  });

  it('sends bytes as base64, dates as ISO 8601 (date columns as YYYY-MM-DD), non-finite numbers as text', () => {
    expect(toJsonValue(new Uint8Array([0, 255, 1]))).toBe('AP8B');
    expect(toJsonValue(new Uint8Array([9, 0, 255, 1]).subarray(1))).toBe('AP8B');
    const at = new Date('2024-02-29T13:14:15.000Z');
    expect(toJsonValue(at, 'timestamp')).toBe('2024-02-29T13:14:15.000Z');
    expect(toJsonValue(at, 'date')).toBe('2024-02-29');
    expect(toJsonValue(Number.NaN)).toBe('NaN');
    expect(toJsonValue({ a: [1] }, 'json')).toEqual({ a: [1] });
  });

  it('converts whole batches without touching the source rows', () => {
    const columns: Column[] = [
      { name: 'id', type: 'int64', nullable: false },
      { name: 'name', type: 'string', nullable: true },
      { name: 'blob', type: 'binary', nullable: true },
    ];
    const rows = [
      [1n, 'a', new Uint8Array([1])],
      [2n ** 60n, null, null],
    ];
    expect(toJsonRows(columns, rows)).toEqual([
      [1, 'a', 'AQ=='],
      ['1152921504606846976', null, null],
    ]);
    expect(rows[0]![0]).toBe(1n);
  });
});

describe('§5.3 list columns', () => {
  it('sends a list as a JSON array whose elements follow the element type', () => {
    const columns: Column[] = [
      { name: 'days', type: 'list', nullable: true, element: { type: 'date' } },
      { name: 'ids', type: 'list', nullable: true, element: { type: 'int64' } },
      { name: 'floats', type: 'list', nullable: true, element: { type: 'float64' } },
    ];
    const rows = toJsonRows(columns, [
      [
        [new Date('2024-02-29T00:00:00Z'), null],
        [9007199254740993n, 1],
        [Number.NaN, 1.5],
      ],
      [[], null, [null]],
    ]);
    expect(JSON.parse(JSON.stringify(rows))).toEqual([
      [
        ['2024-02-29', null],
        ['9007199254740993', 1],
        ['NaN', 1.5],
      ],
      [[], null, [null]],
    ]);
  });
});
