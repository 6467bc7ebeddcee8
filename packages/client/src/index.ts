export * from './backhaul-client.js';
