export type { Logger } from '@backhaul/core';
export { createGateway, type Gateway, type GatewayEvent, type GatewayOptions } from './gateway.js';
export { encodeBatchesAsParquet, encodeCursorAsParquet, FILE_BATCH_SIZE } from './parquet-encoding.js';
export { toJsonRows, toJsonValue } from './row-values.js';
