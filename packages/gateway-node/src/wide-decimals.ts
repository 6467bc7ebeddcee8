import {
  BackhaulError,
  type Column,
  type ColumnBatch,
  type ColumnVector,
  listElementColumn,
} from '@backhaul/core';
import { decimalByteWidth, MAX_DECIMAL_PRECISION, MAX_INT64_DECIMAL_PRECISION } from '@backhaul/parquet';

/**
 * Whether a column is a decimal the writer stores as FIXED_LEN_BYTE_ARRAY DECIMAL (19 to 38 digits),
 * or a list of such decimals.
 */
export function isWideDecimal(column: Column): boolean {
  if (column.type === 'list') return column.element !== undefined && isWideDecimal(listElementColumn(column));
  const precision = column.precision ?? MAX_INT64_DECIMAL_PRECISION;
  return (
    column.type === 'decimal' && precision > MAX_INT64_DECIMAL_PRECISION && precision <= MAX_DECIMAL_PRECISION
  );
}

const utf8 = new TextDecoder();

/**
 * A wide decimal's vector as sources build it — each value its exact text, length-prefixed (core's
 * column-batch.ts) — in the writer's layout for DECIMAL(19..38): the unscaled value as big-endian
 * two's complement in `decimalByteWidth(precision)` bytes. Exact: the text is read as a bigint.
 */
export function wideDecimalVector(column: Column, vector: ColumnVector): ColumnVector {
  const precision = column.precision ?? MAX_DECIMAL_PRECISION;
  const scale = column.scale ?? 0;
  const width = decimalByteWidth(precision);
  const bits = BigInt(8 * width);
  const source = vector.data;
  const view = new DataView(source.buffer, source.byteOffset, source.byteLength);
  const out = new Uint8Array(vector.valueCount * width);
  let at = 0;
  for (let k = 0; k < vector.valueCount; k++) {
    const length = view.getUint32(at, true);
    const text = utf8.decode(source.subarray(at + 4, at + 4 + length));
    at += 4 + length;
    let unsigned = BigInt.asUintN(Number(bits), unscaled(text, scale, column.name));
    for (let i = width - 1; i >= 0; i--) {
      out[k * width + i] = Number(unsigned & 0xffn);
      unsigned >>= 8n;
    }
  }
  return { data: out, valueCount: vector.valueCount, validity: vector.validity };
}

/** The batch with its wide decimal columns (indexes in `wide`) in the writer's layout. */
export function withWideDecimals(
  columns: readonly Column[],
  wide: readonly number[],
  batch: ColumnBatch,
): ColumnBatch {
  if (wide.length === 0) return batch;
  const vectors = batch.vectors.slice();
  for (const c of wide) {
    const column = columns[c]!;
    const vector = vectors[c]!;
    vectors[c] =
      column.type === 'list'
        ? { ...vector, elements: wideDecimalVector(listElementColumn(column), vector.elements!) }
        : wideDecimalVector(column, vector);
  }
  return { rowCount: batch.rowCount, vectors };
}

/** '-1234.5' at scale 2 → -123450n; more decimal places than the scale (other than zeros) are refused. */
function unscaled(text: string, scale: number, name: string): bigint {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  const fraction = m?.[3] ?? '';
  if (!m || (m[2] === '' && fraction === '') || /[^0]/.test(fraction.slice(scale))) {
    throw new BackhaulError(
      'query-failed',
      `Column "${name}": ${JSON.stringify(text)} is not a decimal of scale ${scale}`,
    );
  }
  const digits = `${m[2]}${fraction.slice(0, scale).padEnd(scale, '0')}`;
  return BigInt(`${m[1] === '-' ? '-' : ''}${digits || '0'}`);
}
