export type { Logger } from '@backhaul/core';
export { type BackhaulServer, createBackhaulServer, KEEP_ALIVE_TIMEOUT_MS } from './backhaul-server.js';
export { resultKey } from './chunk-ingest.js';
export type { GatewayCredential } from './credentials.js';
export type { BackhaulServerOptions } from './server-options.js';
