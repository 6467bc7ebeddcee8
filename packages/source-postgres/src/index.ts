export { parseArrayText } from './postgres-arrays.js';
export {
  createPostgresDataSource,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  type PostgresDataSourceOptions,
} from './postgres-data-source.js';
export { columnFromField, numericColumn, parseDate, parseTimestamp } from './postgres-types.js';
