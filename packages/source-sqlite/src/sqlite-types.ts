// How SQLite's declared types and the values a result actually holds become Backhaul column types,
// and the per-value conversions they need; docs/type-mapping.md has the same rules as a table.
import {
  BackhaulError,
  type Column,
  microsToTimestampText,
  type RowValue,
  timestampTextToMicros,
} from '@backhaul/core';

export type Converter = (value: unknown) => RowValue;

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

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

/** SQLite's storage classes, as better-sqlite3 hands them out with `safeIntegers`. */
type StorageClass = 'integer' | 'real' | 'text' | 'blob';

function storageClass(value: unknown): StorageClass {
  if (typeof value === 'bigint') return 'integer';
  if (typeof value === 'number') return 'real';
  if (value instanceof Uint8Array) return 'blob';
  return 'text';
}

/**
 * Decides one column's type. SQLite types values, not columns: any column may mix integers, reals,
 * text and blobs. The declared type is the starting point; the values of the first rows (the
 * inference window) then widen it when one of them does not fit:
 * - only integers → int64; integers and reals → float64; only blobs → binary; anything else with
 *   text, or blobs with other values → string (each value as SQLite's CAST(… AS TEXT) would give it);
 * - a declared numeric column (INT, REAL, BOOLEAN, DECIMAL) holding a value it cannot hold exactly
 *   becomes float64 while every value is a number, string otherwise; any other declared column that
 *   holds a value it cannot read (a date column with non-date text) becomes string.
 * The same column then serves rows and file mode alike.
 */
export class ColumnTyper {
  readonly #name: string;
  readonly #declared: Column | undefined;
  readonly #fit: Converter | undefined;
  readonly #seen = new Set<StorageClass>();
  #misfit = false;

  constructor(name: string, declaredType: string | null) {
    this.#name = name;
    this.#declared = mapDeclaredType(name, declaredType);
    this.#fit = this.#declared && converterFor(this.#declared);
  }

  observe(value: unknown): void {
    if (value === null) return;
    this.#seen.add(storageClass(value));
    if (this.#fit && !this.#misfit && !fits(this.#fit, value)) this.#misfit = true;
  }

  column(): Column {
    const numbersOnly = [...this.#seen].every((kind) => kind === 'integer' || kind === 'real');
    if (this.#declared) {
      if (!this.#misfit) return this.#declared;
      const numeric = ['int64', 'float64', 'boolean', 'decimal'].includes(this.#declared.type);
      return this.#of(numeric && numbersOnly ? 'float64' : 'string');
    }
    if (this.#seen.size === 0) return this.#of('string');
    if (this.#seen.size === 1 && this.#seen.has('integer')) return this.#of('int64');
    if (numbersOnly) return this.#of('float64');
    if (this.#seen.size === 1 && this.#seen.has('blob')) return this.#of('binary');
    return this.#of('string');
  }

  #of(type: Column['type']): Column {
    return { name: this.#name, type, nullable: true };
  }
}

/** Whether a column's converter turns this value into one of the column's type, exactly. */
function fits(convert: Converter, value: unknown): boolean {
  try {
    convert(value);
    return true;
  } catch {
    return false;
  }
}

const narrowInteger = (value: bigint): number | bigint =>
  value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;

/**
 * SQLite value → the column's JS value (see RowValue), or a `query-failed` BackhaulError for a value
 * the column cannot hold: a value past the inference window that would have widened the column.
 */
export function converterFor(column: Column): Converter {
  const refuse = (value: unknown): never => {
    const shown =
      value instanceof Uint8Array ? `a ${value.byteLength}-byte blob` : JSON.stringify(String(value));
    throw new BackhaulError(
      'query-failed',
      `SQLite column "${column.name}" holds ${shown}, which its ${column.type} type (decided by the ` +
        "result's first rows) cannot hold; CAST it in SQL to the type you want",
    );
  };
  switch (column.type) {
    case 'int64':
      return (v) => {
        if (typeof v === 'bigint') return narrowInteger(v);
        if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
        return refuse(v);
      };
    case 'float64':
      return (v) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : refuse(v));
    case 'boolean':
      return (v) => (typeof v === 'bigint' || typeof v === 'number' ? v !== 0n && v !== 0 : refuse(v));
    case 'decimal': {
      const scale = column.scale ?? 0;
      const integerDigits = (column.precision ?? 18) - scale;
      const pattern = new RegExp(`^[+-]?\\d{0,${integerDigits}}(?:\\.\\d{0,${scale}}0*)?$`);
      return (v) => {
        const text =
          typeof v === 'string' ? v.trim() : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '';
        // JS prints very small or large numbers with an exponent: no decimal text, so no fit.
        return /\d/.test(text) && pattern.test(text) ? text : refuse(v);
      };
    }
    case 'timestamp':
      return (v) => {
        const micros = epochOrTextMicros(v);
        return micros === undefined ? refuse(v) : microsToTimestampText(micros);
      };
    case 'date':
      return (v) => {
        const micros = epochOrTextMicros(v);
        return micros === undefined ? refuse(v) : new Date(Number(micros) / 1000);
      };
    case 'json':
      // JSON stays the text SQLite holds: never parsed and printed again, so '"abc"' stays a JSON
      // string, big numbers keep their digits and 'null' stays JSON null, not SQL NULL.
      return (v) => {
        if (typeof v === 'string') return v;
        if (typeof v === 'bigint' || (typeof v === 'number' && Number.isFinite(v))) return String(v);
        return refuse(v);
      };
    case 'binary':
      // CAST(… AS BLOB): text and numbers as their UTF-8 bytes.
      return (v) => (v instanceof Uint8Array ? v : utf8Encoder.encode(String(v)));
    default:
      // CAST(… AS TEXT): numbers as their (shortest exact) text, blobs as UTF-8.
      return (v) => (typeof v === 'string' ? v : v instanceof Uint8Array ? utf8Decoder.decode(v) : String(v));
  }
}

/**
 * Dates and timestamps are stored as ISO text (SQLite's own 'YYYY-MM-DD HH:MM:SS' is UTC; text
 * without a zone is read as UTC) or as epoch milliseconds: microseconds since 1970, exactly.
 */
function epochOrTextMicros(value: unknown): number | bigint | undefined {
  if (typeof value === 'bigint') return value * 1000n;
  if (typeof value === 'number') return Number.isFinite(value) ? Math.round(value * 1000) : undefined;
  if (typeof value === 'string') return timestampTextToMicros(value.trim());
  return undefined;
}
