import type { Column, RowValue } from '@backhaul/core';

/**
 * Row values as JSON can carry them in a row batch (docs/protocol.md §5.3): JSON has no bigint,
 * bytes or dates, so each gets a lossless text form the caller can read back.
 */
export function toJsonValue(value: RowValue, type?: Column['type'], elementType?: Column['type']): unknown {
  if (value === null || value === undefined) return null;
  // A list column's value: a JSON array of its elements, each converted as its element type says.
  if (type === 'list' && Array.isArray(value)) return value.map((v: RowValue) => toJsonValue(v, elementType));
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // JSON.stringify would write NaN and ±Infinity as null without saying so; keep them readable.
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      // Numbers up to 2^53 stay numbers; beyond that a JS reader would silently round, so send text.
      return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString();
    default:
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) return null;
        const iso = value.toISOString();
        return type === 'date' ? iso.slice(0, 10) : iso;
      }
      if (value instanceof Uint8Array) {
        return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
      }
      return value;
  }
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Types whose values are already JSON-safe whatever the source gives: no per-value work. */
const passThrough = new Set<Column['type']>(['string', 'boolean']);

/** Encodes a batch of rows for a row-batch message; one new array per row, values converted in place. */
export function toJsonRows(columns: readonly Column[], rows: readonly RowValue[][]): unknown[][] {
  const convert: number[] = [];
  for (let i = 0; i < columns.length; i++) {
    if (!passThrough.has(columns[i]!.type)) convert.push(i);
  }
  const out: unknown[][] = new Array(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const encoded: unknown[] = row.slice();
    for (const i of convert) {
      const column = columns[i]!;
      encoded[i] = toJsonValue(row[i] ?? null, column.type, column.element?.type);
    }
    out[r] = encoded;
  }
  return out;
}
