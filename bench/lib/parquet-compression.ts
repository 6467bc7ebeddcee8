// Page compressors for the Parquet writer, which takes a synchronous `compress(page)` and bundles
// none. snappy: a small pure-JS encoder of the raw Snappy block format (what Parquet's SNAPPY is).
// zstd: the native binding the zstd codec uses, made synchronous by a worker thread and Atomics.wait.
import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { ParquetCompression } from '@backhaul/parquet';

export type PageCompression = 'none' | 'snappy' | 'zstd';

export function pageCompressor(kind: PageCompression): { compression: ParquetCompression; close(): void } {
  if (kind === 'none') return { compression: 'none', close() {} };
  if (kind === 'snappy') return { compression: { codec: 'snappy', compress: snappyCompress }, close() {} };
  const zstd = new SyncZstd(1);
  return {
    compression: { codec: 'zstd', compress: (page) => zstd.compress(page) },
    close: () => zstd.close(),
  };
}

// ---- snappy (https://github.com/google/snappy/blob/main/format_description.txt) ----

const BLOCK = 65_536;
const HASH_BITS = 14;
const table = new Int32Array(1 << HASH_BITS);

export function snappyCompress(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(32 + input.length + Math.ceil(input.length / 6));
  let op = 0;
  let n = input.length;
  while (n >= 0x80) {
    out[op++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[op++] = n;
  for (let start = 0; start < input.length; start += BLOCK) {
    op = compressBlock(input, start, Math.min(start + BLOCK, input.length), out, op);
  }
  return out.subarray(0, op);
}

const load32 = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);

function compressBlock(src: Uint8Array, start: number, end: number, out: Uint8Array, op: number): number {
  table.fill(-1);
  let ip = start;
  let nextEmit = start;
  let skip = 32;
  while (ip + 4 <= end) {
    const value = load32(src, ip);
    const hash = Math.imul(value, 0x1e35a7bd) >>> (32 - HASH_BITS);
    const candidate = table[hash]!;
    table[hash] = ip;
    if (candidate >= start && load32(src, candidate) === value) {
      op = emitLiteral(src, nextEmit, ip, out, op);
      let length = 4;
      while (ip + length < end && src[candidate + length] === src[ip + length]) length++;
      op = emitCopy(ip - candidate, length, out, op);
      ip += length;
      nextEmit = ip;
      skip = 32;
    } else {
      ip += skip >>> 5; // step up through incompressible data, as snappy does
      skip++;
    }
  }
  return emitLiteral(src, nextEmit, end, out, op);
}

function emitLiteral(src: Uint8Array, from: number, to: number, out: Uint8Array, op: number): number {
  const length = to - from;
  if (length === 0) return op;
  const n = length - 1;
  if (n < 60) out[op++] = n << 2;
  else if (n < 0x100) {
    out[op++] = 60 << 2;
    out[op++] = n;
  } else if (n < 0x10000) {
    out[op++] = 61 << 2;
    out[op++] = n & 0xff;
    out[op++] = n >>> 8;
  } else {
    out[op++] = 62 << 2;
    out[op++] = n & 0xff;
    out[op++] = (n >>> 8) & 0xff;
    out[op++] = n >>> 16;
  }
  out.set(src.subarray(from, to), op);
  return op + length;
}

function emitCopy(offset: number, length: number, out: Uint8Array, op: number): number {
  while (length >= 68) {
    op = copy2(offset, 64, out, op);
    length -= 64;
  }
  if (length > 64) {
    op = copy2(offset, 60, out, op);
    length -= 60;
  }
  if (length < 12 && offset < 2048) {
    out[op++] = 1 | ((length - 4) << 2) | ((offset >>> 8) << 5);
    out[op++] = offset & 0xff;
    return op;
  }
  return copy2(offset, length, out, op);
}

function copy2(offset: number, length: number, out: Uint8Array, op: number): number {
  out[op++] = 2 | ((length - 1) << 2);
  out[op++] = offset & 0xff;
  out[op++] = offset >>> 8;
  return op;
}

// ---- zstd, synchronously ----

const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const zstd = require(workerData.binding);
parentPort.on('message', async ({ page, level }) => {
  const frame = await zstd.compress(Buffer.from(page.buffer, page.byteOffset, page.byteLength), level);
  workerData.port.postMessage(frame);
  Atomics.store(workerData.flag, 0, 1);
  Atomics.notify(workerData.flag, 0);
});`;

class SyncZstd {
  readonly #flag = new Int32Array(new SharedArrayBuffer(4));
  readonly #worker: Worker;
  readonly #channel = new MessageChannel();

  constructor(readonly level: number) {
    const binding = createRequire(import.meta.url).resolve('@mongodb-js/zstd/bindings');
    const port = this.#channel.port2;
    this.#worker = new Worker(workerSource, {
      eval: true,
      workerData: { binding, flag: this.#flag, port },
      transferList: [port],
    });
    this.#worker.unref();
  }

  compress(page: Uint8Array): Uint8Array {
    Atomics.store(this.#flag, 0, 0);
    this.#worker.postMessage({ page, level: this.level });
    Atomics.wait(this.#flag, 0, 0);
    const message = receiveMessageOnPort(this.#channel.port1);
    if (!message) throw new Error('zstd worker answered nothing');
    const frame = message.message as Uint8Array;
    return new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
  }

  close(): void {
    void this.#worker.terminate();
  }
}
