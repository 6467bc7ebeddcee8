export {
  createPostgresDataSource,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  type PostgresDataSourceOptions,
} from './postgres-data-source.js';
export { columnFromField, numericColumn, parseDateTime } from './postgres-types.js';
