import { lstat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { objectKeySegments, refuseObjectKey } from '@backhaul/core';

export { maxObjectKeyLength as maxKeyLength } from '@backhaul/core';

/** Where temporary uploads live, under the root; no key may reach it. */
export const uploadsDirectoryName = '.uploads';

/**
 * Maps an object key to a path under `root`, or throws `bad-request`. The only place a key
 * becomes a path: every operation goes through it.
 */
export function resolveObjectPath(root: string, key: string): string {
  const segments = objectKeySegments(key);
  const path = join(root, ...segments);
  // Belt and braces: whatever the key rule missed, the path must still be inside the root.
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

const refuse = refuseObjectKey;
