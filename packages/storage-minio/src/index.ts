export { maxKeyLength } from './object-key.js';
export { createS3Storage, type S3Storage, type S3StorageOptions } from './s3-storage.js';
export { s3MaxPartSize, s3MaxParts, s3MinPartSize } from './s3-upload.js';
