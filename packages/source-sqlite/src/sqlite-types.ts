// How SQLite's declared types become Backhaul column types, and the per-value conversions they
// need; docs/type-mapping.md has the same rules as a table.
import type { Column, RowValue } from '@backhaul/core';

export type Converter = (value: unknown) => RowValue;

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Declared SQLite type → column type, following SQLite's own affinity rules where they apply. */
export function mapDeclaredType(name: string, declaredType: string | null): Column | undefined {
  if (!declaredType) return undefined;
  const type = declaredType.toUpperCase();
  const column = (t: Column['type'], extra: Partial<Column> = {}): Column => ({
    name,
    type: t,
    nullable: true,
    ...extra,
  });
  if (type.includes('BOOL')) return column('boolean');
  if (type.includes('DATETIME') || type.includes('TIMESTAMP')) return column('timestamp');
  if (type.includes('DATE')) return column('date');
  if (type.includes('JSON')) return column('json');
  if (type.includes('INT')) return column('int64');
  if (type.includes('DECIMAL') || type.includes('NUMERIC')) {
    const match = /\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/.exec(type);
    if (!match) return column('float64');
    const precision = Number(match[1]);
    const scale = Number(match[2] ?? 0);
    if (precision < 1 || precision > 76 || scale > precision) return column('float64');
    return column('decimal', { precision, scale });
  }
  if (type.includes('CHAR') || type.includes('CLOB') || type.includes('TEXT')) return column('string');
  if (type.includes('BLOB')) return column('binary');
  if (type.includes('REAL') || type.includes('FLOA') || type.includes('DOUB')) return column('float64');
  return undefined;
}

export function inferColumn(name: string, value: unknown): Column {
  if (typeof value === 'bigint') return { name, type: 'int64', nullable: true };
  if (typeof value === 'number') return { name, type: 'float64', nullable: true };
  if (value instanceof Uint8Array) return { name, type: 'binary', nullable: true };
  return { name, type: 'string', nullable: true };
}

const narrowInteger = (value: bigint): number | bigint =>
  value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;

export function converterFor(column: Column): Converter | undefined {
  switch (column.type) {
    case 'int64':
      return (v) => (typeof v === 'bigint' ? narrowInteger(v) : (v as RowValue));
    case 'float64':
      return (v) => (typeof v === 'bigint' ? Number(v) : (v as RowValue));
    case 'boolean':
      return (v) => (typeof v === 'bigint' || typeof v === 'number' ? v !== 0n && v !== 0 : (v as RowValue));
    case 'decimal':
      if ((column.precision ?? 18) > 18) return (v) => String(v);
      return (v) => (typeof v === 'bigint' ? narrowInteger(v) : (v as RowValue));
    case 'timestamp':
    case 'date':
      return toDate;
    case 'json':
      return (v) => {
        if (typeof v !== 'string') return v as RowValue;
        try {
          return JSON.parse(v) as RowValue;
        } catch {
          return v;
        }
      };
    case 'string':
      return (v) =>
        typeof v === 'string'
          ? v
          : typeof v === 'bigint' || typeof v === 'number'
            ? String(v)
            : (v as RowValue);
    default:
      return undefined;
  }
}

/** Dates are stored as ISO text (SQLite's own 'YYYY-MM-DD HH:MM:SS' is UTC) or epoch milliseconds. */
function toDate(value: unknown): RowValue {
  if (typeof value === 'bigint') return new Date(Number(value));
  if (typeof value === 'number') return new Date(value);
  if (typeof value === 'string') {
    let text = value.trim();
    if (/^\d{4}-\d{2}-\d{2} \d/.test(text)) text = text.replace(' ', 'T');
    // Without a zone, JS would read a date-time as local time; SQLite's functions write UTC.
    if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += 'Z';
    const date = new Date(text);
    return Number.isNaN(date.getTime()) ? value : date;
  }
  return value as RowValue;
}
