import type { ObjectStorage, ObjectUpload, StoredObject } from '@backhaul/core';
import { failpoint } from './failpoints.js';

/**
 * Bytes of one file, handed over in order in pieces of any size, re-cut into parts of `partSize`
 * and written to a storage upload begun with the first part. Each full part is awaited: the
 * storage's pace is the writer's pace. Both the in-memory ingest and the staged assembly write the
 * final file through it.
 */
export interface PartWriter {
  append(bytes: Uint8Array): Promise<void>;
  /** Writes what is buffered and makes the object visible. */
  complete(): Promise<StoredObject>;
  /** Discards everything written; safe to call more than once. */
  abort(): Promise<void>;
}

export function createPartWriter(storage: ObjectStorage, key: string, partSize: number): PartWriter {
  let upload: ObjectUpload | undefined;
  let part: Buffer | undefined;
  let fill = 0;

  const begin = async () => {
    upload ??= await storage.beginUpload(key, { contentType: 'application/vnd.apache.parquet' });
    return upload;
  };
  const writePart = async (bytes: Uint8Array) => {
    await (await begin()).writePart(bytes);
    failpoint('mid-assembly'); // a part is in storage, the file is not complete
  };

  return {
    async append(bytes) {
      if (fill === 0 && bytes.length === partSize) {
        // A chunk that is exactly one part goes to storage as is: no copy.
        await writePart(bytes);
        return;
      }
      let offset = 0;
      while (offset < bytes.length) {
        // A fresh buffer per part: storage may hold the bytes it was given, so none is reused.
        part ??= Buffer.allocUnsafe(partSize);
        const take = Math.min(partSize - fill, bytes.length - offset);
        part.set(bytes.subarray(offset, offset + take), fill);
        fill += take;
        offset += take;
        if (fill === partSize) {
          const full = part;
          part = undefined;
          fill = 0;
          await writePart(full);
        }
      }
    },

    async complete() {
      if (part && fill > 0) await writePart(part.subarray(0, fill));
      part = undefined;
      fill = 0;
      return (await begin()).complete();
    },

    async abort() {
      part = undefined;
      fill = 0;
      await upload?.abort();
    },
  };
}
