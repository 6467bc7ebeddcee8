import { BackhaulError } from './errors.js';

/** S3's limit on a whole key, so a key valid on one storage is valid on every storage. */
export const maxObjectKeyLength = 1024;
/** NAME_MAX on Linux and macOS: a segment becomes a file name on the filesystem storage. */
const maxSegmentLength = 255;
/**
 * Allow-listed, not deny-listed: letters, digits, '.', '_' and '-', in segments joined by '/'.
 * That alone rules out backslashes, NUL, drive letters (':'), '%'-encoding, empty segments and
 * leading or trailing '/'. S3 itself would take almost anything, but '..' segments are normalised
 * away by some proxies in front of MinIO, and a key that means different objects on different
 * hops is not worth supporting.
 */
const keyPattern = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/** The one rule every `ObjectStorage` applies to keys; returns the key's segments or throws `bad-request`. */
export function objectKeySegments(key: string): string[] {
  if (typeof key !== 'string' || key.length === 0) refuseObjectKey(key, 'it is empty');
  if (key.length > maxObjectKeyLength)
    refuseObjectKey(key, `it is longer than ${maxObjectKeyLength} characters`);
  if (!keyPattern.test(key)) {
    refuseObjectKey(key, "only letters, digits, '.', '_' and '-' in segments joined by '/' are allowed");
  }
  const segments = key.split('/');
  for (const segment of segments) {
    // '.', '..' and storage-internal names ('.uploads') would escape the key space; no other
    // dot-name is worth the risk.
    if (segment.startsWith('.')) refuseObjectKey(key, `segment '${segment}' starts with '.'`);
    if (segment.length > maxSegmentLength)
      refuseObjectKey(key, `a segment is longer than ${maxSegmentLength}`);
  }
  return segments;
}

export function refuseObjectKey(key: unknown, reason: string): never {
  const shown = typeof key === 'string' ? JSON.stringify(key.slice(0, 100)) : typeof key;
  throw new BackhaulError('bad-request', `Object key ${shown} is refused: ${reason}`);
}
