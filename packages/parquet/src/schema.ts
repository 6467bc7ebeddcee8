import { ConvertedType, FieldRepetitionType, PhysicalType } from './format-constants.js';

export type ParquetColumnType =
  | 'boolean'
  | 'int32'
  | 'int64'
  | 'float64'
  | 'string'
  | 'binary'
  | 'json'
  /** Days since 1970-01-01: a number of days, a JS Date, or an ISO 'YYYY-MM-DD' string. INT32 + DATE. */
  | 'date'
  /** A JS Date, milliseconds since the epoch, or an ISO string. INT64 + TIMESTAMP(isAdjustedToUTC, MICROS). */
  | 'timestamp'
  /**
   * A decimal string, number or bigint. DECIMAL(precision, scale) stored as INT64 up to precision 18,
   * as FIXED_LEN_BYTE_ARRAY (big-endian two's complement, the fewest bytes that hold the precision) from
   * 19 to 38.
   */
  | 'decimal'
  /**
   * A list of `element` values (a JS array; null elements allowed), written as Parquet's standard
   * three-level LIST: `optional group <name> (LIST) { repeated group list { optional <element> element; } }`.
   */
  | 'list';

/** The type of a list column's elements: any column type but a list (lists do not nest). */
export interface ParquetListElement {
  type: Exclude<ParquetColumnType, 'list'>;
  /** Decimal only, as for a column. */
  precision?: number;
  scale?: number;
}

export interface ParquetColumn {
  name: string;
  type: ParquetColumnType;
  /** Default true. A required column has no definition levels and rejects NULL. */
  nullable?: boolean;
  /** Decimal only: total significant digits, 1..38 (default 18). */
  precision?: number;
  /** Decimal only: digits after the point, 0..precision (default 2). */
  scale?: number;
  /** List only: the elements' type. */
  element?: ParquetListElement;
}

/** The `LogicalType` union member written for a column, with its parameters. */
export type LogicalTypeAnnotation =
  | { kind: 'STRING' }
  | { kind: 'JSON' }
  | { kind: 'DATE' }
  | { kind: 'TIMESTAMP_MICROS_UTC' }
  | { kind: 'DECIMAL'; precision: number; scale: number }
  | { kind: 'LIST' };

/** A validated column with everything the encoder and the footer need. */
export interface ColumnSpec {
  readonly name: string;
  readonly type: ParquetColumnType;
  readonly nullable: boolean;
  readonly precision: number;
  readonly scale: number;
  readonly physicalType: PhysicalType;
  /** FIXED_LEN_BYTE_ARRAY's byte width (`SchemaElement.type_length`); 0 for the other physical types. */
  readonly typeLength: number;
  readonly repetitionType: FieldRepetitionType;
  readonly convertedType: ConvertedType | undefined;
  readonly logicalType: LogicalTypeAnnotation | undefined;
  /**
   * List columns only: the leaf, named `element`, always optional. The list's own spec carries the
   * leaf's physical type, precision and scale too, so chunk encoding and statistics treat it as the leaf.
   */
  readonly element?: ColumnSpec;
}

const DEFAULT_DECIMAL_PRECISION = 18;
const DEFAULT_DECIMAL_SCALE = 2;
/** INT64 holds 18 full decimal digits (10^18 - 1 < 2^63 - 1); wider decimals are FIXED_LEN_BYTE_ARRAY. */
export const MAX_INT64_DECIMAL_PRECISION = 18;
/**
 * The widest DECIMAL written: 38 digits (16 bytes), the limit of DuckDB, Arrow's decimal128, Spark and
 * most SQL engines, so every reader can open the file. A wider column is refused when the writer is
 * built; write it as a `string` column (its exact text).
 */
export const MAX_DECIMAL_PRECISION = 38;

/** Bytes of a FIXED_LEN_BYTE_ARRAY decimal: the fewest whose two's complement holds ±(10^precision - 1). */
export function decimalByteWidth(precision: number): number {
  const max = 10n ** BigInt(precision) - 1n;
  let width = 1;
  while (max >= 1n << BigInt(8 * width - 1)) width++;
  return width;
}

const PHYSICAL: Record<Exclude<ParquetColumnType, 'list'>, PhysicalType> = {
  boolean: PhysicalType.BOOLEAN,
  int32: PhysicalType.INT32,
  int64: PhysicalType.INT64,
  float64: PhysicalType.DOUBLE,
  string: PhysicalType.BYTE_ARRAY,
  binary: PhysicalType.BYTE_ARRAY,
  json: PhysicalType.BYTE_ARRAY,
  date: PhysicalType.INT32,
  timestamp: PhysicalType.INT64,
  decimal: PhysicalType.INT64,
};

export function normalizeColumns(columns: readonly ParquetColumn[]): ColumnSpec[] {
  // Checked through `unknown`: narrowing a readonly array with Array.isArray would turn it into any[].
  const list: unknown = columns;
  if (!Array.isArray(list) || columns.length === 0) {
    throw new TypeError('ParquetWriter needs at least one column');
  }
  const seen = new Set<string>();
  return columns.map((column, index) => {
    const { name, type } = column;
    if (typeof name !== 'string' || name.length === 0) {
      throw new TypeError(`Parquet column ${index} needs a non-empty name`);
    }
    if (seen.has(name)) throw new TypeError(`Parquet column name "${name}" is used twice`);
    seen.add(name);
    if (type === 'list') return listSpec(column);
    if (!Object.hasOwn(PHYSICAL, type)) {
      throw new TypeError(`Parquet column "${name}" has unknown type ${JSON.stringify(type)}`);
    }
    const nullable = column.nullable ?? true;
    let precision = 0;
    let scale = 0;
    if (type === 'decimal') {
      precision = column.precision ?? DEFAULT_DECIMAL_PRECISION;
      scale = column.scale ?? DEFAULT_DECIMAL_SCALE;
      if (!Number.isInteger(precision) || precision < 1) {
        throw new RangeError(`Parquet decimal column "${name}": precision must be an integer >= 1`);
      }
      if (precision > MAX_DECIMAL_PRECISION) {
        throw new RangeError(
          `Parquet decimal column "${name}": precision ${precision} is not supported (max ${MAX_DECIMAL_PRECISION}, ` +
            'what Parquet readers accept); write wider decimals as a string column',
        );
      }
      if (!Number.isInteger(scale) || scale < 0 || scale > precision) {
        throw new RangeError(`Parquet decimal column "${name}": scale must be an integer in 0..${precision}`);
      }
    }
    return {
      name,
      type,
      nullable,
      precision,
      scale,
      ...(type === 'decimal' && precision > MAX_INT64_DECIMAL_PRECISION
        ? { physicalType: PhysicalType.FIXED_LEN_BYTE_ARRAY, typeLength: decimalByteWidth(precision) }
        : { physicalType: PHYSICAL[type], typeLength: 0 }),
      repetitionType: nullable ? FieldRepetitionType.OPTIONAL : FieldRepetitionType.REQUIRED,
      ...annotations(type, precision, scale),
    };
  });
}

/** A list column: the leaf's spec (validated as a column named `element`) wrapped in the LIST groups. */
function listSpec(column: ParquetColumn): ColumnSpec {
  const element = column.element;
  if (typeof element !== 'object' || element === null || element.type === ('list' as string)) {
    throw new TypeError(`Parquet list column "${column.name}" needs an element type other than list`);
  }
  const [leaf] = normalizeColumns([{ ...element, name: 'element', nullable: true }]);
  const nullable = column.nullable ?? true;
  return {
    ...leaf!,
    name: column.name,
    type: 'list',
    nullable,
    repetitionType: nullable ? FieldRepetitionType.OPTIONAL : FieldRepetitionType.REQUIRED,
    convertedType: ConvertedType.LIST,
    logicalType: { kind: 'LIST' },
    element: leaf!,
  };
}

/** A leaf column's path in the schema: its name, or `<name>.list.element` for a list. */
export function columnPath(spec: ColumnSpec): string[] {
  return spec.element ? [spec.name, 'list', 'element'] : [spec.name];
}

function annotations(
  type: ParquetColumnType,
  precision: number,
  scale: number,
): { convertedType: ConvertedType | undefined; logicalType: LogicalTypeAnnotation | undefined } {
  switch (type) {
    case 'string':
      return { convertedType: ConvertedType.UTF8, logicalType: { kind: 'STRING' } };
    case 'json':
      return { convertedType: ConvertedType.JSON, logicalType: { kind: 'JSON' } };
    case 'date':
      return { convertedType: ConvertedType.DATE, logicalType: { kind: 'DATE' } };
    case 'timestamp':
      // TIMESTAMP_MICROS as a ConvertedType implies isAdjustedToUTC=true, which is what we write.
      return { convertedType: ConvertedType.TIMESTAMP_MICROS, logicalType: { kind: 'TIMESTAMP_MICROS_UTC' } };
    case 'decimal':
      return { convertedType: ConvertedType.DECIMAL, logicalType: { kind: 'DECIMAL', precision, scale } };
    default:
      return { convertedType: undefined, logicalType: undefined };
  }
}

/** The error for a NULL in a `nullable: false` column, whether it came in a row or in a column batch. */
export function nullInRequired(): TypeError {
  return new TypeError('NULL in a required (nullable: false) column');
}
