import { BackhaulError } from '@backhaul/core';

/** S3's limit on a whole key, prefix included. */
export const maxKeyLength = 1024;

/**
 * The same allow-list as the filesystem storage, so a key valid on one storage is valid on every
 * storage: letters, digits, '.', '_' and '-' in segments joined by '/'. S3 itself would take
 * almost anything, but '..' segments are normalised away by some proxies in front of MinIO, and
 * a key that means different objects on different hops is not worth supporting.
 */
const keyPattern = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/** Maps an object key to the S3 key under `prefix`, or throws `bad-request`. */
export function toObjectKey(prefix: string, key: string): string {
  if (typeof key !== 'string' || key.length === 0) refuse(key, 'it is empty');
  if (!keyPattern.test(key)) {
    refuse(key, "only letters, digits, '.', '_' and '-' in segments joined by '/' are allowed");
  }
  for (const segment of key.split('/')) {
    if (segment.startsWith('.')) refuse(key, `segment '${segment}' starts with '.'`);
  }
  const objectKey = prefix + key;
  if (objectKey.length > maxKeyLength)
    refuse(key, `with the prefix it is longer than ${maxKeyLength} characters`);
  return objectKey;
}

/** '' stays ''; anything else ends with exactly one '/', so 'results' cannot match 'results-old/'. */
export function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '') return '';
  if (typeof prefix !== 'string' || prefix.startsWith('/')) {
    throw new TypeError(`createS3Storage: prefix must not start with '/', got ${JSON.stringify(prefix)}`);
  }
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

function refuse(key: unknown, reason: string): never {
  const shown = typeof key === 'string' ? JSON.stringify(key.slice(0, 100)) : typeof key;
  throw new BackhaulError('bad-request', `Object key ${shown} is refused: ${reason}`);
}
