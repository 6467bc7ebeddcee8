export { createFsStorage, type FsStorage, type FsStorageOptions } from './fs-storage.js';
export { maxKeyLength, resolveObjectPath } from './object-key.js';
