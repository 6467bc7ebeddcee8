import {
  BackhaulError,
  type Column,
  type ColumnBatch,
  listElementColumn,
  type QueryCursor,
  type RowValue,
  rowsToColumnBatch,
} from '@backhaul/core';
import {
  type ParquetColumn,
  type ParquetCompression,
  type ParquetListElement,
  ParquetWriter,
} from '@backhaul/parquet';
import { isWideDecimal, withWideDecimals } from './wide-decimals.js';

/** Rows per batch pulled off the cursor in file mode: big enough to keep the column loops hot. */
export const FILE_BATCH_SIZE = 8192;

/**
 * Row groups of the files a gateway writes: smaller than the writer's defaults (128 MiB, 1,048,576
 * rows), because nothing is uploaded before the first row group is complete. A quarter million rows
 * starts the upload after about a tenth of a 100 MB result while compressing as well as a million
 * (docs/benchmarks.md, bench:query); the byte cap keeps a gateway's memory per file bounded for wide rows.
 */
export const FILE_ROW_GROUP_ROWS = 262_144;
export const FILE_ROW_GROUP_BYTES = 32 << 20;

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
  // Decimals of 19 to 38 digits: the sources' text, rewritten as the writer's FIXED_LEN_BYTE_ARRAY.
  const wide = columns.flatMap((column, index) => (isWideDecimal(column) ? [index] : []));
  const writer = new ParquetWriter(toParquetColumns(columns), {
    compression: compression as ParquetCompression,
    rowGroupSize: FILE_ROW_GROUP_ROWS,
    rowGroupBytes: FILE_ROW_GROUP_BYTES,
  });
  for await (const batch of batches) {
    if (Array.isArray(batch)) {
      onBatch?.(batch.length);
      // Rows are turned into column vectors here, not by the writer's row path: one conversion for
      // every source, exact to the microsecond (timestamps as text), with a typed error naming the
      // column and row for a value its column cannot hold.
      yield* await writer.writeColumnsAsync(
        withWideDecimals(columns, wide, rowsToColumnBatch(columns, batch)),
      );
    } else {
      onBatch?.(batch.rowCount);
      yield* await writer.writeColumnsAsync(withWideDecimals(columns, wide, batch));
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

/** The writer stores DECIMAL up to 38 digits (DuckDB's, Arrow's and Spark's limit); wider ones are text. */
function toParquetColumns(columns: readonly Column[]): ParquetColumn[] {
  if (columns.length === 0) throw new BackhaulError('query-failed', 'The query returned no columns');
  return columns.map((column): ParquetColumn => {
    const nullable = column.nullable ?? true;
    if (column.type === 'list' && column.element) {
      // The element's type by the flat columns' rules: a decimal past 38 digits becomes its text.
      const { type, precision, scale } = toParquetColumn(listElementColumn(column));
      const element = { type, precision, scale } as ParquetListElement;
      return { name: column.name, type: 'list', nullable, element };
    }
    return toParquetColumn(column);
  });
}

function toParquetColumn(column: Column): ParquetColumn {
  if (column.type === 'decimal' && (column.precision ?? 18) > 18 && !isWideDecimal(column)) {
    return { name: column.name, type: 'string', nullable: column.nullable ?? true };
  }
  return {
    name: column.name,
    type: column.type,
    nullable: column.nullable ?? true,
    ...(column.precision !== undefined ? { precision: column.precision } : {}),
    ...(column.scale !== undefined ? { scale: column.scale } : {}),
  };
}
