import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ObjectStorage, ObjectUpload } from '@backhaul/core';

/**
 * The baselines' receiving end: plain node:http handlers that write the bytes into the same
 * ObjectStorage as Backhaul, in parts of max(minPartSize, 512 KiB) like Backhaul's ingest, with
 * no checksums, codecs or protocol: the floor any protocol pays on this link and storage.
 *
 *   POST /bench/raw/<key>              the whole file as one streaming body → 201 {size}
 *   POST /bench/naive/<key>/<index>    one piece, in order (sequential)       → 204
 *   POST /bench/naive/<key>/complete                                         → 201 {size}
 */
export function createSink(storage: ObjectStorage) {
  const partSize = Math.max(Math.min(storage.capabilities.minPartSize, 64 << 20), 512 * 1024);
  const naive = new Map<string, PartWriter>();

  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> => {
    let match = /^\/bench\/raw\/([A-Za-z0-9._/-]+)$/.exec(path);
    if (match && req.method === 'POST') {
      const writer = await PartWriter.begin(storage, match[1]!, partSize);
      try {
        for await (const piece of req) await writer.write(piece as Buffer);
        const stored = await writer.complete();
        send(res, 201, { size: stored.size, key: stored.key });
      } catch (error) {
        await writer.abort();
        throw error;
      }
      return true;
    }
    match = /^\/bench\/naive\/([A-Za-z0-9._/-]+)\/(\d+|complete)$/.exec(path);
    if (match && req.method === 'POST') {
      const key = match[1]!;
      if (match[2] === 'complete') {
        const writer = naive.get(key);
        if (!writer) {
          send(res, 404, { error: 'no such upload' });
          return true;
        }
        naive.delete(key);
        const stored = await writer.complete();
        send(res, 201, { size: stored.size, key: stored.key });
        return true;
      }
      let writer = naive.get(key);
      if (!writer) {
        writer = await PartWriter.begin(storage, key, partSize);
        naive.set(key, writer);
      }
      for await (const piece of req) await writer.write(piece as Buffer);
      res.writeHead(204).end();
      return true;
    }
    return false;
  };
}

class PartWriter {
  #buffer: Buffer;
  #filled = 0;

  private constructor(
    readonly upload: ObjectUpload,
    readonly partSize: number,
  ) {
    this.#buffer = Buffer.allocUnsafe(partSize);
  }

  static async begin(storage: ObjectStorage, key: string, partSize: number): Promise<PartWriter> {
    return new PartWriter(
      await storage.beginUpload(key, { contentType: 'application/octet-stream' }),
      partSize,
    );
  }

  async write(piece: Buffer): Promise<void> {
    let offset = 0;
    while (offset < piece.length) {
      const take = Math.min(this.partSize - this.#filled, piece.length - offset);
      piece.copy(this.#buffer, this.#filled, offset, offset + take);
      this.#filled += take;
      offset += take;
      if (this.#filled === this.partSize) {
        const part = this.#buffer;
        this.#buffer = Buffer.allocUnsafe(this.partSize);
        this.#filled = 0;
        await this.upload.writePart(part);
      }
    }
  }

  async complete() {
    if (this.#filled > 0) await this.upload.writePart(this.#buffer.subarray(0, this.#filled));
    return this.upload.complete();
  }

  abort() {
    return this.upload.abort();
  }
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
