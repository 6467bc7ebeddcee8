// The benches' deterministic dataset: the same rows on every run (fixed seed), of mixed types, as
// row batches, as a cached Parquet file (.bench-data/), and as a PostgreSQL table (query bench).

import { once } from 'node:events';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createChecksummer } from '@backhaul/core';
import { type ParquetColumn, ParquetWriter } from '@backhaul/parquet';
import { progress } from './report.js';
import { repoRoot } from './spawn.js';
import { now } from './timing.js';

export const SEED = 0x5eed_b4c4;
/** About 100 MB of uncompressed Parquet. */
export const DEFAULT_ROWS = 2_200_000;
/** 2: the writer's own zstd (level 3) and snappy, dictionary encoding and statistics. */
const DATASET_VERSION = 2;

/** Page compression inside the dataset's Parquet file, by the writer's built-in codecs. */
export type PageCompression = 'none' | 'snappy' | 'zstd';

export const dataDir = (): string => process.env.BENCH_DATA_DIR || join(repoRoot, '.bench-data');

/** mulberry32: small, fast, and the same sequence everywhere for one seed. */
export function random(seed = SEED): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export const columns: ParquetColumn[] = [
  { name: 'id', type: 'int64', nullable: false },
  { name: 'customer_id', type: 'int32', nullable: false },
  { name: 'status', type: 'string', nullable: false },
  { name: 'amount', type: 'decimal', precision: 12, scale: 2, nullable: true },
  { name: 'score', type: 'float64', nullable: true },
  { name: 'created_at', type: 'timestamp', nullable: false },
  { name: 'paid', type: 'boolean', nullable: true },
];

const STATUSES = ['new', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'];
const EPOCH_2024 = Date.UTC(2024, 0, 1);

/** Rows [from, to) of the dataset, in batches; row i is the same whatever the batch size. */
export function* rowBatches(rows: number, batchSize = 8192, seed = SEED): Generator<unknown[][]> {
  const next = random(seed);
  for (let from = 0; from < rows; from += batchSize) {
    const batch: unknown[][] = [];
    for (let i = from; i < Math.min(rows, from + batchSize); i++) {
      const r1 = next();
      const r2 = next();
      const r3 = next();
      batch.push([
        i + 1,
        1 + Math.floor(r1 * 200_000),
        STATUSES[Math.floor(r2 * STATUSES.length)],
        r3 < 0.05 ? null : Math.round(next() * 10_000_000) / 100,
        r2 < 0.1 ? null : next() * 100,
        EPOCH_2024 + i * 10_000 + Math.floor(r1 * 10_000),
        r3 > 0.98 ? null : r1 < 0.5,
      ]);
    }
    yield batch;
  }
}

export interface DatasetFile {
  path: string;
  bytes: number;
  rows: number;
  compression: PageCompression;
  checksum: string;
  /** Seconds the Parquet writer took when the file was made (rows generated on the fly included). */
  encodeS: number;
}

/** The dataset as a Parquet file, written once per (rows, compression) and reused. */
export async function ensureParquetFile(rows: number, compression: PageCompression): Promise<DatasetFile> {
  const dir = dataDir();
  await mkdir(dir, { recursive: true });
  const base = join(dir, `dataset-v${DATASET_VERSION}-${rows}-${compression}`);
  const path = `${base}.parquet`;
  try {
    const meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as DatasetFile;
    if ((await stat(path)).size === meta.bytes) return { ...meta, path };
  } catch {
    // not cached yet
  }
  progress(`writing the dataset: ${rows} rows, Parquet compression ${compression} → ${path}`);
  const writer = new ParquetWriter(columns, { compression });
  const out = createWriteStream(`${path}.tmp`);
  const started = now();
  let written = 0;
  const write = async (pieces: Uint8Array[]) => {
    for (const piece of pieces) {
      written += piece.length;
      if (!out.write(piece)) await once(out, 'drain');
    }
  };
  for (const batch of rowBatches(rows)) await write(await writer.writeAsync(batch as never));
  await write(await writer.finishAsync());
  const encodeS = (now() - started) / 1000;
  out.end();
  await once(out, 'finish');
  await rename(`${path}.tmp`, path);
  const meta: DatasetFile = {
    path,
    bytes: written,
    rows,
    compression,
    checksum: await fileChecksum(path),
    encodeS,
  };
  await writeFile(`${base}.json`, JSON.stringify(meta, null, 2));
  progress(`dataset ready: ${(written / 1e6).toFixed(1)} MB in ${encodeS.toFixed(2)} s`);
  return meta;
}

export async function fileChecksum(path: string): Promise<string> {
  const hash = (await createChecksummer()).stream();
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(piece as Buffer);
  return hash.digest();
}

/** Reads a file (or its first `limit` bytes) in 1 MiB pieces: what the gateway side sends. */
export function fileBytes(path: string, limit?: number): ReadStream {
  return createReadStream(path, {
    highWaterMark: 1 << 20,
    ...(limit !== undefined ? { end: limit - 1 } : {}),
  });
}

/**
 * `size` bytes generated on the fly (nothing on disk, nothing held): a repeating pseudo-random
 * 1 MiB block with a counter stamped in each piece, so every 512 KiB chunk differs.
 */
export async function* generatedBytes(size: number, pieceSize = 1 << 20): AsyncGenerator<Uint8Array> {
  const next = random(SEED ^ 0xabcdef);
  const block = new Uint8Array(pieceSize);
  for (let i = 0; i < block.length; i++) block[i] = Math.floor(next() * 256);
  const view = new DataView(block.buffer);
  for (let offset = 0, n = 0; offset < size; offset += pieceSize, n++) {
    for (let k = 0; k + 8 <= pieceSize; k += 65_536) view.setUint32(k, n);
    const piece = new Uint8Array(Math.min(pieceSize, size - offset));
    piece.set(block.subarray(0, piece.length));
    yield piece;
  }
}
