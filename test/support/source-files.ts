import type { Column, DataSource, QueryRequest } from '@backhaul/core';
import { encodeBatchesAsParquet, encodeCursorAsParquet, toJsonRows } from '@backhaul/gateway-node';

/**
 * A query's result as the gateway sends it, for the sources' exactness tests: `file` is the Parquet
 * file mode writes (column batches, `columnar: true`), `rowFile` the one auto mode writes when a
 * result outgrows rows (row batches turned into a file), `rows` the row batches as their JSON.
 */
export async function fileOf(
  source: DataSource,
  sql: string,
  path: 'columnar' | 'rows' = 'columnar',
  request: Partial<QueryRequest> = {},
): Promise<Uint8Array[]> {
  const cursor = await source.query({ sql, params: [], ...request, columnar: path === 'columnar' });
  const parts: Uint8Array[] = [];
  if (path === 'columnar') {
    for await (const part of encodeCursorAsParquet(cursor, { batchSize: 1000 })) parts.push(part);
    return parts;
  }
  try {
    for await (const part of encodeBatchesAsParquet(cursor.columns, cursor.batches(1000))) parts.push(part);
  } finally {
    await cursor.close();
  }
  return parts;
}

/** The row batches of a query as rows mode sends them: columns, and rows as their JSON values. */
export async function rowsOf(
  source: DataSource,
  sql: string,
  request: Partial<QueryRequest> = {},
): Promise<{ columns: readonly Column[]; rows: unknown[][] }> {
  const cursor = await source.query({ sql, params: [], ...request });
  const rows: unknown[][] = [];
  try {
    for await (const batch of cursor.batches(1000)) rows.push(...toJsonRows(cursor.columns, batch));
  } finally {
    await cursor.close();
  }
  return { columns: cursor.columns, rows: JSON.parse(JSON.stringify(rows)) };
}
