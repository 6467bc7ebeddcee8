export * from './admin-client.js';
export * from './backhaul-client.js';
export { QueryAbortedError, QueryCancelledError } from './query-errors.js';
export type { ServerConnectionOptions } from './server-requests.js';
