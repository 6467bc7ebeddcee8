import type { ParquetColumnType } from '../src/index.js';

/** Every column type the writer supports, for tests that cover them all. */
export const COLUMN_TYPES: readonly ParquetColumnType[] = [
  'boolean',
  'int32',
  'int64',
  'float64',
  'string',
  'binary',
  'json',
  'date',
  'timestamp',
  'decimal',
];
