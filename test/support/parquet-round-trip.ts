import { columnBatchToRows, type QueryCursor, type RowValue } from '@backhaul/core';
import { encodeBatchesAsParquet, type FileBatch, fileBatches } from '@backhaul/gateway-node';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

/**
 * Reads a cursor through the gateway's own file-mode encoder (column batches where the cursor offers them) and back through hyparquet, as a
 * reader of the uploaded file would. `source` is a copy of the rows as the cursor handed them out.
 * Closes the cursor. Shared by the SQL sources' type tests, which check every type survives the trip.
 */
export async function throughParquet(
  cursor: QueryCursor,
): Promise<{ source: RowValue[][]; read: Record<string, unknown>[] }> {
  const source: RowValue[][] = [];
  async function* recorded(): AsyncGenerator<FileBatch> {
    for await (const batch of fileBatches(cursor, 1000)) {
      // A copy: the encoder turns wide decimals into text in place.
      if (Array.isArray(batch)) source.push(...batch.map((row) => [...row]));
      else source.push(...columnBatchToRows(cursor.columns, batch));
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
  const read = (await parquetReadObjects({ file: arrayBuffer, utf8: false, compressors })) as Record<
    string,
    unknown
  >[];
  return { source, read };
}
