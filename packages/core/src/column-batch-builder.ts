import { type ColumnBatch, type ColumnVector, listElementColumn } from './column-batch.js';
import type { RowValue } from './data-source.js';
import { BackhaulError } from './errors.js';
import type { Column } from './protocol.js';
import { timestampTextToMicros } from './timestamp-text.js';

const MS_PER_DAY = 86_400_000;
const TWO_POW_32 = 4_294_967_296;
const MAX_INT64 = 2n ** 63n - 1n;
const MIN_INT64 = -(2n ** 63n);
const utf8 = new TextEncoder();

/**
 * Builds one `ColumnVector` (layout in column-batch.ts) a value at a time. Sources that read a value
 * per cell from their driver (mysql2, better-sqlite3) append it here directly, with no row array in
 * between; `append` takes any `RowValue` the column's type accepts (see `ColumnBatchBuilder`).
 */
export class ColumnVectorBuilder {
  readonly column: Column;
  /** Rows appended so far, values and NULLs. */
  rows = 0;
  #data: Uint8Array;
  #view: DataView;
  #pos = 0;
  #valueCount = 0;
  #validity: Uint8Array;
  #hasNull = false;
  readonly #append: (value: RowValue) => void;
  /** List columns: the elements of every list appended, one row per element. */
  readonly #elements: ColumnVectorBuilder | undefined;

  constructor(column: Column, capacity: number) {
    this.column = column;
    this.#elements =
      column.type === 'list' ? new ColumnVectorBuilder(listElementColumn(column), capacity * 4) : undefined;
    this.#data = new Uint8Array(Math.max(64, capacity * 8));
    this.#view = new DataView(this.#data.buffer);
    this.#validity = new Uint8Array((capacity + 7) >>> 3);
    this.#append = this.#appenderFor(column);
  }

  appendNull(): void {
    this.#ensureRows();
    this.#hasNull = true;
    this.rows++;
  }

  /** A value of the column's type (NULL for null or undefined); a BackhaulError when it cannot be one. */
  append(value: RowValue | undefined): void {
    if (value === null || value === undefined) this.appendNull();
    else this.#append(value);
  }

  appendBoolean(value: boolean): void {
    this.#reserve(1)[this.#pos++] = value ? 1 : 0;
    this.#valid();
  }

  appendInt32(value: number): void {
    this.#reserve(4);
    this.#view.setInt32(this.#pos, value, true);
    this.#pos += 4;
    this.#valid();
  }

  /** int64, date-free: a safe integer number or a bigint. */
  appendInt64(value: number | bigint): void {
    this.#reserve(8);
    if (typeof value === 'bigint') {
      this.#view.setBigInt64(this.#pos, value, true);
    } else {
      const hi = Math.floor(value / TWO_POW_32);
      this.#view.setUint32(this.#pos, value - hi * TWO_POW_32, true);
      this.#view.setInt32(this.#pos + 4, hi, true);
    }
    this.#pos += 8;
    this.#valid();
  }

  appendFloat64(value: number): void {
    this.#reserve(8);
    this.#view.setFloat64(this.#pos, value, true);
    this.#pos += 8;
    this.#valid();
  }

  /** A length-prefixed UTF-8 value (string, json, wide decimal). */
  appendText(value: string): void {
    // Worst case 3 bytes per UTF-16 unit; encodeInto says how many it wrote.
    const out = this.#reserve(4 + value.length * 3);
    const { written } = utf8.encodeInto(value, out.subarray(this.#pos + 4));
    this.#view.setUint32(this.#pos, written, true);
    this.#pos += 4 + written;
    this.#valid();
  }

  appendBytes(value: Uint8Array): void {
    const out = this.#reserve(4 + value.byteLength);
    this.#view.setUint32(this.#pos, value.byteLength, true);
    out.set(value, this.#pos + 4);
    this.#pos += 4 + value.byteLength;
    this.#valid();
  }

  /**
   * `bytes[start, end)` as one length-prefixed value (binary, or text the caller knows is UTF-8):
   * a source decoding its wire format copies a field straight from the packet, with no view or
   * string made for it.
   */
  appendByteRange(bytes: Uint8Array, start: number, end: number): void {
    const length = end - start;
    const out = this.#reserve(4 + length);
    this.#view.setUint32(this.#pos, length, true);
    const pos = this.#pos + 4;
    // Most fields are short: a loop beats making the subarray that `set` needs.
    if (length <= 48) {
      for (let k = 0; k < length; k++) out[pos + k] = bytes[start + k]!;
    } else {
      out.set(bytes.subarray(start, end), pos);
    }
    this.#pos = pos + length;
    this.#valid();
  }

  /**
   * A list (an array of values of the element type, NULLs allowed). An element its type cannot hold
   * fails as any value does, naming the column, the row and the element.
   */
  appendList(list: readonly RowValue[]): void {
    const elements = this.#elements;
    if (!elements) this.refuse(list);
    for (let k = 0; k < list.length; k++) {
      try {
        elements.append(list[k]);
      } catch (error) {
        if (!(error instanceof BackhaulError)) throw error;
        // The elements builder counts elements, not rows: say which row and which element instead.
        const why = error.message.slice(error.message.indexOf(': ') + 2);
        throw new BackhaulError(
          'query-failed',
          `Column "${this.column.name}", row ${this.rows + 1}, element ${k + 1} of its list: ${why}`,
        );
      }
    }
    this.#reserve(4);
    this.#view.setUint32(this.#pos, list.length, true);
    this.#pos += 4;
    this.#valid();
  }

  vector(): ColumnVector {
    const vector: ColumnVector = {
      data: this.#data.subarray(0, this.#pos),
      valueCount: this.#valueCount,
      validity: this.#hasNull ? this.#validity.subarray(0, (this.rows + 7) >>> 3) : undefined,
    };
    return this.#elements ? { ...vector, elements: this.#elements.vector() } : vector;
  }

  /** A BackhaulError for a value this column's type cannot hold. */
  refuse(value: unknown, why = `is not a ${this.column.type}`): never {
    throw new BackhaulError(
      'query-failed',
      `Column "${this.column.name}", row ${this.rows + 1}: ${describe(value)} ${why}`,
    );
  }

  #valid(): void {
    this.#ensureRows();
    this.#validity[this.rows >>> 3]! |= 1 << (this.rows & 7);
    this.#valueCount++;
    this.rows++;
  }

  #ensureRows(): void {
    if (this.rows >>> 3 < this.#validity.length) return;
    const grown = new Uint8Array(this.#validity.length * 2 + 8);
    grown.set(this.#validity);
    this.#validity = grown;
  }

  #reserve(bytes: number): Uint8Array {
    const needed = this.#pos + bytes;
    if (needed > this.#data.length) {
      const grown = new Uint8Array(Math.max(needed, this.#data.length * 2));
      grown.set(this.#data.subarray(0, this.#pos));
      this.#data = grown;
      this.#view = new DataView(grown.buffer);
    }
    return this.#data;
  }

  #appenderFor(column: Column): (value: RowValue) => void {
    switch (column.type) {
      case 'boolean':
        return (v) => this.appendBoolean(typeof v === 'boolean' ? v : this.#number(v) !== 0);
      case 'int32':
        return (v) => {
          const n = this.#number(v);
          if ((n | 0) !== n) this.refuse(v, 'is not a 32-bit integer');
          this.appendInt32(n);
        };
      case 'int64':
        return (v) => this.appendInt64(this.#int64(v));
      case 'float64':
        return (v) => this.appendFloat64(typeof v === 'number' ? v : this.#number(v));
      case 'date':
        return (v) => this.appendInt32(this.#days(v));
      case 'timestamp':
        return (v) => this.appendInt64(this.#micros(v));
      case 'decimal':
        if ((column.precision ?? 18) <= 18) {
          const scale = column.scale ?? 0;
          return (v) => this.appendInt64(this.#unscaled(v, scale));
        }
        return (v) => this.appendText(this.#text(v));
      case 'list':
        return (v) => (Array.isArray(v) ? this.appendList(v) : this.refuse(v, 'is not a list (an array)'));
      case 'binary':
        return (v) => {
          if (v instanceof Uint8Array) this.appendBytes(v);
          else if (typeof v === 'string') this.appendBytes(utf8.encode(v));
          else this.refuse(v);
        };
      default:
        return (v) => this.appendText(this.#text(v));
    }
  }

  #number(v: RowValue): number {
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'string' && v.trim() !== '') {
      const n = Number(v);
      if (!Number.isNaN(n)) return n;
    }
    return this.refuse(v);
  }

  #int64(v: RowValue): number | bigint {
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) return v;
      return this.refuse(v, 'is not an exact 64-bit integer');
    }
    let big: bigint | undefined;
    if (typeof v === 'bigint') big = v;
    else if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) big = BigInt(v.trim());
    if (big === undefined) return this.refuse(v);
    if (big > MAX_INT64 || big < MIN_INT64) this.refuse(v, 'is outside the 64-bit integer range');
    return big;
  }

  #days(v: RowValue): number {
    if (v instanceof Date) {
      const ms = v.getTime();
      if (Number.isNaN(ms)) this.refuse(v);
      // floor, not trunc: an instant before 1970 belongs to the earlier day.
      return Math.floor(ms / MS_PER_DAY);
    }
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string') {
      const micros = timestampTextToMicros(v);
      if (micros !== undefined) return Math.floor(Number(micros) / (MS_PER_DAY * 1000));
    }
    return this.refuse(v);
  }

  #micros(v: RowValue): number | bigint {
    let micros: number | bigint | undefined;
    if (typeof v === 'string') micros = timestampTextToMicros(v);
    else if (v instanceof Date) micros = Number.isNaN(v.getTime()) ? undefined : v.getTime() * 1000;
    else if (typeof v === 'number' && Number.isFinite(v)) micros = Math.round(v * 1000);
    if (micros === undefined) return this.refuse(v);
    // A Date's milliseconds × 1000 may pass 2^53: redo it in bigint rather than round.
    if (typeof micros === 'number' && !Number.isSafeInteger(micros)) {
      micros = BigInt(v instanceof Date ? v.getTime() : Math.round(v as number)) * 1000n;
    }
    return micros;
  }

  /** Exact decimal text (or an integer, or a number that is exact at this scale) → unscaled int64. */
  #unscaled(v: RowValue, scale: number): number | bigint {
    const text =
      typeof v === 'string' ? v.trim() : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '';
    const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
    if (!m || (m[2] === '' && !m[3])) return this.refuse(v, 'is not a decimal');
    const fraction = m[3] ?? '';
    if (fraction.length > scale && /[^0]/.test(fraction.slice(scale))) {
      this.refuse(v, `has more than the column's ${scale} decimal places`);
    }
    const digits = `${m[2]}${fraction.slice(0, scale).padEnd(scale, '0')}`;
    const unscaled = BigInt(`${m[1] === '-' ? '-' : ''}${digits || '0'}`);
    if (unscaled > MAX_INT64 || unscaled < MIN_INT64) this.refuse(v, 'is too wide for the column');
    return unscaled;
  }

  #text(v: RowValue): string {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
    if (v instanceof Date) return v.toISOString();
    if (v instanceof Uint8Array) return this.refuse(v, 'is bytes, not text');
    // A source's structured JSON value (an object or array): its JSON text.
    return JSON.stringify(v);
  }
}

/**
 * Builds a `ColumnBatch` of at most `capacity` rows (the capacity grows if more are appended). Each
 * column accepts the values a source may hand out for its type: boolean (or 0/1); int32 and int64 as
 * integer numbers, bigints or integer text; float64 as numbers; decimal as exact text, integers or
 * numbers; date as a Date, days since 1970 or 'YYYY-MM-DD'; timestamp as ISO text (exact to the
 * microsecond), a Date or epoch milliseconds; string and json as text (other values as their text,
 * objects as JSON); binary as bytes; list as an array of values its element type accepts.
 */
export class ColumnBatchBuilder {
  readonly columns: readonly ColumnVectorBuilder[];

  constructor(columns: readonly Column[], capacity: number) {
    this.columns = columns.map((column) => new ColumnVectorBuilder(column, capacity));
  }

  get rowCount(): number {
    return this.columns[0]?.rows ?? 0;
  }

  appendRow(row: readonly RowValue[]): void {
    const columns = this.columns;
    for (let c = 0; c < columns.length; c++) columns[c]!.append(row[c]);
  }

  batch(): ColumnBatch {
    const rowCount = this.rowCount;
    for (const column of this.columns) {
      if (column.rows !== rowCount) {
        throw new Error(`Column "${column.column.name}" has ${column.rows} rows, not ${rowCount}`);
      }
    }
    return { rowCount, vectors: this.columns.map((column) => column.vector()) };
  }
}

/** Rows of plain JS values as a column batch: what file mode writes for a source that reads rows. */
export function rowsToColumnBatch(
  columns: readonly Column[],
  rows: readonly (readonly RowValue[])[],
): ColumnBatch {
  const builder = new ColumnBatchBuilder(columns, rows.length);
  for (const row of rows) builder.appendRow(row);
  return builder.batch();
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (typeof value === 'bigint') return `${value}`;
  if (value instanceof Date) return `Date ${Number.isNaN(value.getTime()) ? 'Invalid' : value.toISOString()}`;
  return typeof value === 'object' ? 'an object' : String(value);
}
