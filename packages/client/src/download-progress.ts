import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** One reading of a download in progress. */
export interface ProgressReading {
  bytes: number;
  /** From Content-Length; undefined when the server did not say. */
  total: number | undefined;
  elapsedMs: number;
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.ceil(seconds - minutes * 60)} s`;
}

/** `12.0 MiB / 40.0 MiB  30%  [######--------------]  8.0 MiB/s  ETA 4 s`: bytes, rate, time left. */
export function formatProgress({ bytes, total, elapsedMs }: ProgressReading): string {
  const rate = elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0;
  const speed = `${formatBytes(Math.round(rate))}/s`;
  if (total === undefined || total === 0) return `${formatBytes(bytes)}  ${speed}`;
  const share = Math.min(1, bytes / total);
  const filled = Math.round(share * 20);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(20 - filled)}]`;
  const eta = rate > 0 ? `ETA ${formatSeconds((total - bytes) / rate)}` : 'ETA ?';
  return `${formatBytes(bytes)} / ${formatBytes(total)}  ${Math.floor(share * 100)}%  ${bar}  ${speed}  ${eta}`;
}

/**
 * Streams a response body into a file (never the whole file in memory), calling `onProgress` at
 * most every `everyMs` and once at the end. Resolves with the byte count written.
 */
export async function downloadToFile(
  response: Response,
  path: string,
  onProgress: (reading: ProgressReading, done: boolean) => void,
  everyMs = 250,
): Promise<number> {
  if (!response.body) throw new Error('The download has no body');
  const header = response.headers.get('content-length');
  const total = header === null ? undefined : Number(header);
  const startedAt = performance.now();
  let bytes = 0;
  let shownAt = 0;
  const reading = () => ({ bytes, total, elapsedMs: performance.now() - startedAt });
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      const now = performance.now();
      if (now - shownAt >= everyMs) {
        shownAt = now;
        onProgress(reading(), false);
      }
      done(null, chunk);
    },
  });
  await pipeline(
    Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
    counter,
    createWriteStream(path),
  );
  onProgress(reading(), true);
  return bytes;
}
