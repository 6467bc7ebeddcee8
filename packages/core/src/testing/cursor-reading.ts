import type { DataSource, QueryCursor } from '../data-source.js';

/** Reads a cursor to its end in batches of `batchSize`, closes it, and returns the size of each batch. */
export async function batchSizesOf(cursor: QueryCursor, batchSize: number): Promise<number[]> {
  const sizes: number[] = [];
  try {
    for await (const batch of cursor.batches(batchSize)) sizes.push(batch.length);
  } finally {
    await cursor.close();
  }
  return sizes;
}

/** Runs `sql` without parameters on a source and returns how many rows it read. */
export async function countRows(source: DataSource, sql: string): Promise<number> {
  const sizes = await batchSizesOf(await source.query({ sql, params: [] }), 100);
  return sizes.reduce((sum, size) => sum + size, 0);
}
