import {
  BackhaulError,
  type Column,
  type ColumnBatch,
  type QueryCursor,
  type RowValue,
} from '@backhaul/core';
import { type ParquetColumn, type ParquetCompression, ParquetWriter } from '@backhaul/parquet';

/** Rows per batch pulled off the cursor in file mode: big enough to keep the column loops hot. */
export const FILE_BATCH_SIZE = 8192;

/**
 * Page compression of the files a gateway writes: zstd level 3 by default, so a file is about as small
 * as DuckDB's own zstd output (docs/benchmarks.md) and the chunk codec has nothing left to squeeze.
 */
export type ParquetFileCompression = 'zstd' | 'snappy' | 'none' | { codec: 'zstd'; level?: number };
export const DEFAULT_PARQUET_COMPRESSION: ParquetFileCompression = 'zstd';

/** What file mode encodes: row batches, or column batches from a source that decodes into columns. */
export type FileBatch = RowValue[][] | ColumnBatch;

/**
 * Parquet bytes of batches, one row group at a time, never the whole file in memory. The next
 * batch is pulled only once the previous bytes were consumed, so a slow upload slows the cursor.
 * `onBatch` sees each batch's row count before it is encoded (progress and the completion's rowCount).
 * Pages are compressed as `compression` says (default zstd), off the main thread.
 */
export async function* encodeBatchesAsParquet(
  columns: readonly Column[],
  batches: AsyncIterable<FileBatch>,
  onBatch?: (rows: number) => void,
  compression: ParquetFileCompression = DEFAULT_PARQUET_COMPRESSION,
): AsyncGenerator<Uint8Array> {
  const { parquetColumns, fixRows } = toParquetColumns(columns);
  const writer = new ParquetWriter(parquetColumns, { compression: compression as ParquetCompression });
  for await (const batch of batches) {
    if (Array.isArray(batch)) {
      onBatch?.(batch.length);
      yield* await writer.writeAsync(fixRows ? fixRows(batch) : batch);
    } else {
      // A decimal wider than 18 digits is already its text in a column vector: nothing to fix.
      onBatch?.(batch.rowCount);
      yield* await writer.writeColumnsAsync(batch);
    }
  }
  yield* await writer.finishAsync();
}

/**
 * The exact bytes file mode uploads for a cursor: concatenated, they are the file the server
 * assembles. Useful to check a download, or to write a result locally. Open the cursor as file mode
 * does, with `columnar: true`, to get the same bytes from a source that decodes into columns.
 * Closes the cursor.
 */
export async function* encodeCursorAsParquet(
  cursor: QueryCursor,
  options: { batchSize?: number; compression?: ParquetFileCompression } = {},
): AsyncGenerator<Uint8Array> {
  try {
    yield* encodeBatchesAsParquet(
      cursor.columns,
      fileBatches(cursor, options.batchSize ?? FILE_BATCH_SIZE),
      undefined,
      options.compression,
    );
  } finally {
    await cursor.close();
  }
}

/** The cursor's batches as file mode reads them: column batches where the source offers them. */
export function fileBatches(cursor: QueryCursor, batchSize: number): AsyncIterable<FileBatch> {
  return cursor.columnBatches ? cursor.columnBatches(batchSize) : cursor.batches(batchSize);
}

/** The Parquet writer stores decimals as INT64 (precision ≤ 18); wider ones travel as text. */
function toParquetColumns(columns: readonly Column[]): {
  parquetColumns: ParquetColumn[];
  fixRows: ((rows: RowValue[][]) => RowValue[][]) | undefined;
} {
  if (columns.length === 0) throw new BackhaulError('query-failed', 'The query returned no columns');
  const wide: number[] = [];
  const parquetColumns = columns.map((column, index): ParquetColumn => {
    if (column.type === 'decimal' && (column.precision ?? 18) > 18) {
      wide.push(index);
      return { name: column.name, type: 'string', nullable: column.nullable ?? true };
    }
    return {
      name: column.name,
      type: column.type,
      nullable: column.nullable ?? true,
      ...(column.precision !== undefined ? { precision: column.precision } : {}),
      ...(column.scale !== undefined ? { scale: column.scale } : {}),
    };
  });
  const fixRows =
    wide.length === 0
      ? undefined
      : (rows: RowValue[][]) => {
          for (const row of rows) {
            for (const i of wide) if (row[i] !== null && row[i] !== undefined) row[i] = String(row[i]);
          }
          return rows;
        };
  return { parquetColumns, fixRows };
}
