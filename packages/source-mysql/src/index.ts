export {
  createMysqlDataSource,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  type MysqlDataSourceOptions,
} from './mysql-data-source.js';
export { columnFromField, decimalColumn, type MysqlColumn, parseDateTime } from './mysql-types.js';
