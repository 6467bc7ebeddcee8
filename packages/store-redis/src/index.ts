export { createRedisAdmissionLedger, type RedisAdmissionLedgerOptions } from './redis-admission-ledger.js';
export { createRedisClusterBus, type RedisClusterBusOptions } from './redis-cluster-bus.js';
export {
  createRedisCommandStore,
  type DeadLetter,
  defaultKeyPrefix,
  defaultRedisUrl,
  type RedisCommandStore,
  type RedisCommandStoreOptions,
} from './redis-command-store.js';
export {
  createRedisCredentialStore,
  type RedisCredentialStore,
  type RedisCredentialStoreOptions,
} from './redis-credential-store.js';
export {
  createRedisDeployment,
  type RedisDeployment,
  type RedisDeploymentOptions,
} from './redis-deployment.js';
export { createRedisRowLog, type RedisRowLogOptions } from './redis-row-log.js';
export {
  createRedisUploadLedger,
  type RedisUploadLedger,
  type RedisUploadLedgerOptions,
} from './redis-upload-ledger.js';
