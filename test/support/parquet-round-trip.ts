import type { QueryCursor, RowValue } from '@backhaul/core';
import { encodeBatchesAsParquet } from '@backhaul/gateway-node';
import { parquetReadObjects } from 'hyparquet';

/**
 * Reads a cursor through the gateway's own file-mode encoder and back through hyparquet, as a
 * reader of the uploaded file would. `source` is a copy of the rows as the cursor handed them out.
 * Closes the cursor. Shared by the SQL sources' type tests, which check every type survives the trip.
 */
export async function throughParquet(
  cursor: QueryCursor,
): Promise<{ source: RowValue[][]; read: Record<string, unknown>[] }> {
  const source: RowValue[][] = [];
  async function* recorded(): AsyncGenerator<RowValue[][]> {
    for await (const batch of cursor.batches(1000)) {
      // A copy: the encoder turns wide decimals into text in place.
      source.push(...batch.map((row) => [...row]));
      yield batch;
    }
  }
  const parts: Uint8Array[] = [];
  try {
    for await (const part of encodeBatchesAsParquet(cursor.columns, recorded())) parts.push(part);
  } finally {
    await cursor.close();
  }
  const file = Buffer.concat(parts);
  const arrayBuffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
  // utf8: false keeps binary columns as bytes; STRING/JSON columns are still decoded.
  const read = (await parquetReadObjects({ file: arrayBuffer, utf8: false })) as Record<string, unknown>[];
  return { source, read };
}
