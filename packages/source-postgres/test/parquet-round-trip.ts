import type { Column, QueryCursor, RowValue } from '@backhaul/core';
import { type ParquetColumn, ParquetWriter } from '@backhaul/parquet';
import { parquetReadObjects } from 'hyparquet';

/**
 * The gateway's own mapping (gateway-node parquet-encoding.ts): the writer stores DECIMAL as INT64,
 * so a decimal wider than 18 digits travels as its exact text in a string column.
 */
function toParquetColumns(columns: readonly Column[]): { parquet: ParquetColumn[]; wide: number[] } {
  const wide: number[] = [];
  const parquet = columns.map((column, index): ParquetColumn => {
    if (column.type === 'decimal' && (column.precision ?? 18) > 18) {
      wide.push(index);
      return { name: column.name, type: 'string', nullable: true };
    }
    return {
      name: column.name,
      type: column.type,
      nullable: true,
      precision: column.precision,
      scale: column.scale,
    };
  });
  return { parquet, wide };
}

/** Reads a cursor through the Parquet writer and back through hyparquet, as a reader of the file would. */
export async function throughParquet(
  cursor: QueryCursor,
): Promise<{ source: RowValue[][]; read: Record<string, unknown>[] }> {
  const { parquet, wide } = toParquetColumns(cursor.columns);
  const writer = new ParquetWriter(parquet);
  const parts: Uint8Array[] = [];
  const source: RowValue[][] = [];
  try {
    for await (const batch of cursor.batches(1000)) {
      source.push(...batch.map((row) => [...row]));
      for (const row of batch) for (const i of wide) if (row[i] !== null) row[i] = String(row[i]);
      parts.push(...writer.write(batch));
    }
  } finally {
    await cursor.close();
  }
  parts.push(...writer.finish());
  const file = Buffer.concat(parts);
  const arrayBuffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
  // utf8: false keeps binary columns as bytes; STRING/JSON columns are still decoded.
  const read = (await parquetReadObjects({ file: arrayBuffer, utf8: false })) as Record<string, unknown>[];
  return { source, read };
}
