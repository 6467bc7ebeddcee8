export * from './admin-client.js';
export * from './backhaul-client.js';
export type { ServerConnectionOptions } from './server-requests.js';
