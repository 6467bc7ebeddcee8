import { maxObjectKeyLength, objectKeySegments, refuseObjectKey } from '@backhaul/core';

export { maxObjectKeyLength as maxKeyLength } from '@backhaul/core';

/** Maps an object key to the S3 key under `prefix`, or throws `bad-request`. */
export function toObjectKey(prefix: string, key: string): string {
  objectKeySegments(key);
  const objectKey = prefix + key;
  if (objectKey.length > maxObjectKeyLength) {
    refuseObjectKey(key, `with the prefix it is longer than ${maxObjectKeyLength} characters`);
  }
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
