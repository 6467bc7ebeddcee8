export { createSqliteDataSource, type SqliteDataSourceOptions } from './sqlite-data-source.js';
