export type {
  FleetDeadLetter,
  FleetFailure,
  FleetGateway,
  FleetQuery,
  FleetView,
  Logger,
} from '@backhaul/core';
export type {
  AdmissionClass,
  AdmissionLimits,
  AdmissionScope,
  AdmissionSnapshot,
  ClassOccupancy,
} from './admission.js';
export { defaultAdmissionLimits } from './admission.js';
export { type BackhaulServer, createBackhaulServer } from './backhaul-server.js';
export { resultKey } from './chunk-ingest.js';
export type { CallerCredential, GatewayCredential } from './credentials.js';
export { REPLAY_CALLER } from './fleet-api.js';
export { KEEP_ALIVE_TIMEOUT_MS } from './own-http-server.js';
export type { BackhaulServerOptions } from './server-options.js';
