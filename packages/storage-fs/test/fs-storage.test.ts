import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackhaulError, type ObjectStorage } from '@backhaul/core';
import { runObjectStorageConformance } from '@backhaul/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFsStorage, type FsStorage } from '../src/index.js';

runObjectStorageConformance('fs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'backhaul-fs-conformance-'));
  return { storage: createFsStorage({ root }), cleanup: () => rm(root, { recursive: true, force: true }) };
});

let sandbox: string;
let root: string;
let outside: string;
let storage: FsStorage;

beforeEach(async () => {
  sandbox = await mkdtemp(join(tmpdir(), 'backhaul-fs-'));
  root = join(sandbox, 'root');
  outside = join(sandbox, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'secret.txt'), 'secret');
  storage = createFsStorage({ root });
});
afterEach(async () => {
  await rm(sandbox, { recursive: true, force: true });
});

async function errorOf(promise: Promise<unknown>): Promise<BackhaulError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(BackhaulError.isInstance(error), `expected a BackhaulError, got ${String(error)}`).toBe(true);
  return error as BackhaulError;
}

async function put(target: ObjectStorage, key: string, ...parts: Uint8Array[]) {
  const upload = await target.beginUpload(key);
  for (const part of parts) await upload.writePart(part);
  return upload.complete();
}

async function readAll(target: ObjectStorage, key: string): Promise<Buffer> {
  const pieces: Uint8Array[] = [];
  for await (const piece of await target.read(key)) pieces.push(piece);
  return Buffer.concat(pieces);
}

/** Every path under `directory`, relative to it. */
async function listTree(directory: string, prefix = ''): Promise<string[]> {
  const paths: string[] = [];
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const path = `${prefix}${entry.name}`;
    paths.push(path);
    // Walked by hand: readdir's own recursion follows symbolic links.
    if (entry.isDirectory()) paths.push(...(await listTree(join(directory, entry.name), `${path}/`)));
  }
  return paths.sort();
}

describe('fs: keys never reach outside the root', () => {
  const corpus = [
    '../x',
    'a/../../x',
    '..',
    '.',
    'a/./b',
    '%2e%2e/x',
    '%2e%2e%2fx',
    '..%2fx',
    '/etc/passwd',
    'a\\..\\x',
    '..\\x',
    'a\0b',
    'C:\\x',
    'C:/x',
    '',
    'a//b',
    'a/',
    '.uploads/x',
    '.uploads',
    'a/.uploads/x',
    '.hidden',
    'a b',
    'ü',
    'x'.repeat(1025),
    `${'y'.repeat(256)}/z`,
  ];

  it.each(corpus.map((key) => [JSON.stringify(key).slice(0, 40), key]))(
    'refuses %s with bad-request in every operation',
    async (_label, key) => {
      for (const attempt of [
        storage.beginUpload(key),
        storage.head(key),
        storage.read(key),
        storage.delete(key),
      ]) {
        expect((await errorOf(attempt)).code).toBe('bad-request');
      }
    },
  );

  it('created nothing outside the root after the whole corpus', async () => {
    for (const key of corpus) {
      await storage.beginUpload(key).catch(() => undefined);
      await storage.delete(key).catch(() => undefined);
    }
    const tree = await listTree(sandbox);
    expect(tree.filter((path) => !path.startsWith('root'))).toEqual(['outside', 'outside/secret.txt']);
    // Refused before the root is even created; if it was, it holds nothing but the uploads directory.
    expect(tree.filter((path) => path.startsWith('root/') && path !== 'root/.uploads')).toEqual([]);
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
  });

  it('accepts ordinary keys', async () => {
    const longest = `${'x'.repeat(200)}/`.repeat(5).concat('y'.repeat(1024 - 201 * 5));
    expect(longest).toHaveLength(1024);
    for (const key of ['results/gw-1/abc.parquet', 'a', 'a.b-c_D9', longest]) {
      await put(storage, key, Buffer.from(key));
      expect((await readAll(storage, key)).toString()).toBe(key);
    }
  });

  describe('a symbolic link inside the root pointing outside is never followed', () => {
    beforeEach(async () => {
      await mkdir(root, { recursive: true });
      await symlink(outside, join(root, 'link'));
      await symlink(join(outside, 'secret.txt'), join(root, 'secret-link'));
    });

    it('through a directory link: no read, no metadata, no write, no delete', async () => {
      expect((await errorOf(storage.read('link/secret.txt'))).code).toBe('bad-request');
      expect((await errorOf(storage.head('link/secret.txt'))).code).toBe('bad-request');
      expect((await errorOf(storage.beginUpload('link/planted.txt'))).code).toBe('bad-request');
      expect((await errorOf(storage.delete('link/secret.txt'))).code).toBe('bad-request');
      expect((await errorOf(storage.read('link/secret.txt', { start: 0, end: 3 }))).code).toBe('bad-request');
      expect(await listTree(outside)).toEqual(['secret.txt']);
    });

    it('through a file link: no read, no metadata, and delete leaves the target alone', async () => {
      expect((await errorOf(storage.read('secret-link'))).code).toBe('bad-request');
      expect((await errorOf(storage.head('secret-link'))).code).toBe('bad-request');
      await storage.delete('secret-link');
      expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
    });

    it('planted after beginUpload(): complete() refuses and writes nothing outside', async () => {
      const upload = await storage.beginUpload('late/planted.txt');
      await upload.writePart(Buffer.from('payload'));
      await symlink(outside, join(root, 'late'));
      expect((await errorOf(upload.complete())).code).toBe('bad-request');
      expect(await listTree(outside)).toEqual(['secret.txt']);
      expect(await readdir(join(root, '.uploads'))).toEqual([]);
    });

    it('is left in place by sweep, and its target survives', async () => {
      await storage.sweep(Date.now() + 60_000);
      expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
      expect((await listTree(root)).filter((path) => !path.startsWith('.uploads'))).toEqual([
        'link',
        'secret-link',
      ]);
    });
  });
});

describe('fs: readers never see a partial file', () => {
  it('sees nothing or the whole object while an upload is being written', async () => {
    const part = Buffer.alloc(64 * 1024, 0xab);
    const parts = 40;
    const expected = Buffer.concat(Array.from({ length: parts }, () => part));
    let writing = true;
    const observations = { missing: 0, whole: 0 };

    const reader = async () => {
      while (writing) {
        try {
          const bytes = await readAll(storage, 'live.bin');
          expect(bytes.equals(expected)).toBe(true);
          observations.whole++;
        } catch (error) {
          expect(BackhaulError.isInstance(error) && error.code).toBe('not-found');
          observations.missing++;
        }
      }
    };
    const writer = async () => {
      const upload = await storage.beginUpload('live.bin');
      for (let i = 0; i < parts; i++) {
        await upload.writePart(part);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await upload.complete();
      // Let the readers observe the finished object before they stop.
      await new Promise((resolve) => setTimeout(resolve, 50));
      writing = false;
    };
    await Promise.all([writer(), reader(), reader(), reader()]);
    expect(observations.missing).toBeGreaterThan(0);
    expect(observations.whole).toBeGreaterThan(0);
  });

  it('sees the old object or the new one whole while it is replaced', async () => {
    const first = Buffer.alloc(1024 * 1024, 1);
    const second = Buffer.alloc(2 * 1024 * 1024, 2);
    await put(storage, 'replaced.bin', first);
    let writing = true;
    const seen = new Set<number>();
    const reader = async () => {
      while (writing) {
        const bytes = await readAll(storage, 'replaced.bin');
        if (bytes.equals(first)) seen.add(1);
        else if (bytes.equals(second)) seen.add(2);
        else throw new Error(`torn read of ${bytes.length} bytes`);
      }
    };
    const writer = async () => {
      const upload = await storage.beginUpload('replaced.bin');
      for (let i = 0; i < 32; i++) {
        await upload.writePart(second.subarray(i * 65_536, (i + 1) * 65_536));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await upload.complete();
      await new Promise((resolve) => setTimeout(resolve, 50));
      writing = false;
    };
    await Promise.all([writer(), reader(), reader()]);
    expect([...seen].sort()).toEqual([1, 2]);
  });
});

describe('fs: retention', () => {
  it('sweeps abandoned uploads, and their complete() then fails', async () => {
    const upload = await storage.beginUpload('abandoned.bin');
    await upload.writePart(Buffer.from('half'));
    expect(await readdir(join(root, '.uploads'))).toHaveLength(1);
    expect(await storage.sweep(Date.now() + 1_000)).toBe(1);
    expect(await readdir(join(root, '.uploads'))).toEqual([]);
    expect((await errorOf(upload.complete())).code).toBe('storage-failed');
    expect(await storage.head('abandoned.bin')).toBeUndefined();
  });

  it('sweepExpired(now) removes what is older than retentionMs', async () => {
    const expiring = createFsStorage({ root, retentionMs: 1_000 });
    const stored = await put(expiring, 'results/a.parquet', Buffer.from('PAR1'));
    expect(await expiring.sweepExpired(stored.createdAt + 500)).toBe(0);
    expect(await expiring.sweepExpired(stored.createdAt + 1_001)).toBe(1);
    expect(await expiring.head('results/a.parquet')).toBeUndefined();
  });

  it('startSweeper() sweeps in the background until stopped', async () => {
    const expiring = createFsStorage({ root, retentionMs: 0 });
    await put(expiring, 'soon-gone.bin', Buffer.from('x'));
    const stop = expiring.startSweeper(10);
    try {
      const deadline = Date.now() + 5_000;
      while ((await expiring.head('soon-gone.bin')) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(await expiring.head('soon-gone.bin')).toBeUndefined();
    } finally {
      stop();
    }
  });
});

describe('fs: uploads', () => {
  it('refuses writePart() and complete() after complete(), and abort() after it is a no-op', async () => {
    const upload = await storage.beginUpload('done.bin');
    await upload.writePart(Buffer.from('abc'));
    await upload.complete();
    expect((await errorOf(upload.writePart(Buffer.from('more')))).code).toBe('invalid-state');
    expect((await errorOf(upload.complete())).code).toBe('invalid-state');
    await upload.abort();
    expect((await readAll(storage, 'done.bin')).toString()).toBe('abc');
  });

  it('abort() removes the temporary file', async () => {
    const upload = await storage.beginUpload('aborted.bin');
    await upload.writePart(Buffer.alloc(1024));
    expect(await readdir(join(root, '.uploads'))).toHaveLength(1);
    await upload.abort();
    expect(await readdir(join(root, '.uploads'))).toEqual([]);
    expect((await errorOf(upload.writePart(Buffer.alloc(1)))).code).toBe('invalid-state');
  });

  it('appends parts in call order even when the caller does not await each one', async () => {
    const upload = await storage.beginUpload('ordered.bin');
    await Promise.all(Array.from({ length: 50 }, (_, i) => upload.writePart(Buffer.from([i]))));
    await upload.complete();
    expect([...(await readAll(storage, 'ordered.bin'))]).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('refuses a key that runs through an existing object', async () => {
    await put(storage, 'a', Buffer.from('file'));
    expect((await errorOf(storage.beginUpload('a/b'))).code).toBe('bad-request');
    await put(storage, 'c/d', Buffer.from('file'));
    const upload = await storage.beginUpload('c');
    await upload.writePart(Buffer.from('x'));
    expect((await errorOf(upload.complete())).code).toBe('bad-request');
    expect(await readdir(join(root, '.uploads'))).toEqual([]);
  });

  it('refuses an invalid byte range with bad-request', async () => {
    await put(storage, 'r.bin', Buffer.from('0123456789'));
    expect((await errorOf(storage.read('r.bin', { start: 5, end: 2 }))).code).toBe('bad-request');
    expect((await errorOf(storage.read('r.bin', { start: -1 }))).code).toBe('bad-request');
  });
});
