export { createGateway, type Gateway, type GatewayEvent, type GatewayOptions } from './gateway.js';
export type { Logger } from './logger.js';
export { toJsonRows, toJsonValue } from './row-values.js';
export { createSqliteDataSource, type SqliteDataSourceOptions } from './sqlite-data-source.js';
