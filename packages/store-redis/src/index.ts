export {
  createRedisCommandStore,
  type DeadLetter,
  defaultKeyPrefix,
  defaultRedisUrl,
  type RedisCommandStore,
  type RedisCommandStoreOptions,
} from './redis-command-store.js';
