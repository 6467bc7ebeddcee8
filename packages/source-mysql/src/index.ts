export {
  createMysqlDataSource,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  type MysqlDataSourceOptions,
} from './mysql-data-source.js';
export {
  columnFromField,
  decimalColumn,
  type MysqlColumn,
  parseDateTime,
  parseTimestamp,
} from './mysql-types.js';
