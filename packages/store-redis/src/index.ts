export { createRedisAdmissionLedger, type RedisAdmissionLedgerOptions } from './redis-admission-ledger.js';
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
