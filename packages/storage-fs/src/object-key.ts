import { lstat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { BackhaulError } from '@backhaul/core';

/** S3's limit, so a key valid here is valid on every storage. */
export const maxKeyLength = 1024;
/** NAME_MAX on Linux and macOS. */
const maxSegmentLength = 255;
/**
 * Allow-listed, not deny-listed: letters, digits, '.', '_' and '-', in segments joined by '/'.
 * That alone rules out backslashes, NUL, drive letters (':'), '%'-encoding, empty segments and
 * leading or trailing '/'.
 */
const keyPattern = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/** Where temporary uploads live, under the root; no key may reach it. */
export const uploadsDirectoryName = '.uploads';

/**
 * Maps an object key to a path under `root`, or throws `bad-request`. The only place a key
 * becomes a path: every operation goes through it.
 */
export function resolveObjectPath(root: string, key: string): string {
  if (typeof key !== 'string' || key.length === 0) refuse(key, 'it is empty');
  if (key.length > maxKeyLength) refuse(key, `it is longer than ${maxKeyLength} characters`);
  if (!keyPattern.test(key)) {
    refuse(key, "only letters, digits, '.', '_' and '-' in segments joined by '/' are allowed");
  }
  const segments = key.split('/');
  for (const segment of segments) {
    // '.', '..' and '.uploads' would escape the key space; no other dot-name is worth the risk.
    if (segment.startsWith('.')) refuse(key, `segment '${segment}' starts with '.'`);
    if (segment.length > maxSegmentLength) refuse(key, `a segment is longer than ${maxSegmentLength}`);
  }
  const path = join(root, ...segments);
  // Belt and braces: whatever the checks above missed, the path must still be inside the root.
  if (!path.startsWith(root + sep) || resolve(path) !== path) refuse(key, 'it resolves outside the root');
  return path;
}

/**
 * Throws `bad-request` if any directory between `root` and `path` is a symbolic link, so a link
 * planted inside the root cannot lead a read or a write outside it. Missing directories pass:
 * the caller creates them or reports not-found.
 */
export async function assertNoSymlinkedParents(root: string, path: string, key: string): Promise<void> {
  const segments = path.slice(root.length + 1).split(sep);
  let current = root;
  for (const segment of segments.slice(0, -1)) {
    current = join(current, segment);
    let stats: Awaited<ReturnType<typeof lstat>>;
    try {
      stats = await lstat(current);
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    if (stats.isSymbolicLink()) refuse(key, 'a directory on its path is a symbolic link');
    if (!stats.isDirectory()) refuse(key, `'${segments.slice(0, -1).join('/')}' is an object, not a prefix`);
  }
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function refuse(key: unknown, reason: string): never {
  const shown = typeof key === 'string' ? JSON.stringify(key.slice(0, 100)) : typeof key;
  throw new BackhaulError('bad-request', `Object key ${shown} is refused: ${reason}`);
}
