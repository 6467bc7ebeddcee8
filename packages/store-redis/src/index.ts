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
  createRedisUploadLedger,
  type RedisUploadLedger,
  type RedisUploadLedgerOptions,
} from './redis-upload-ledger.js';
