import { ParquetWriter, type ParquetWriterOptions } from './parquet-writer.js';
import type { ParquetColumn } from './schema.js';

type RowBatch = readonly (readonly unknown[])[];

/**
 * Turns row batches into Parquet bytes, pulling the next batch only after the previous one's bytes were
 * consumed, so a slow consumer (an upload) applies backpressure to the producer (a SQL cursor). Pages are
 * zstd-compressed unless `options.compression` says otherwise.
 */
export async function* encodeParquet(
  columns: ParquetColumn[],
  batches: AsyncIterable<RowBatch> | Iterable<RowBatch>,
  options?: ParquetWriterOptions,
): AsyncIterable<Uint8Array> {
  const writer = new ParquetWriter(columns, { compression: 'zstd', ...options });
  for await (const batch of batches) {
    yield* await writer.writeAsync(batch);
  }
  yield* await writer.finishAsync();
}
