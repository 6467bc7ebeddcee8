import type { ColumnBatch } from './column-batch.js';
import type { Column } from './protocol.js';

/**
 * A database the gateway runs SQL on. Rows come off a cursor in batches: a source never
 * holds a whole result in memory, and enforces `maxRows` and `timeoutMs` itself.
 */
export interface DataSource {
  readonly specificationVersion: 'v1';
  readonly name: string;
  query(request: QueryRequest): Promise<QueryCursor>;
  close(): Promise<void>;
}

export interface QueryRequest {
  sql: string;
  params: readonly (string | number | boolean | null)[];
  maxRows?: number;
  timeoutMs?: number;
  /**
   * Cancellation (the caller's `DELETE /v1/queries/{id}`, or the gateway stopping). When it aborts,
   * the source stops the statement *on the database*, not only the reading of it (PostgreSQL: a
   * cancel request; MySQL/MariaDB: `KILL QUERY` on another connection), and `query()` or the
   * batch iteration rejects with `signal.reason`. A source that cannot reach a statement mid-step
   * (SQLite runs it on the gateway's own thread) stops it at the next row it can check.
   */
  signal?: AbortSignal;
  /**
   * Ask for `QueryCursor.columnBatches` (file mode does): a source that can decode straight into
   * columns then skips building a JS value per cell. A source that cannot ignores it.
   */
  columnar?: boolean;
}

/**
 * Row values are plain JS: null, boolean, number, bigint (int64 beyond 2^53), string,
 * Uint8Array (binary), Date (date; timestamp to the millisecond), string (json text, decimals, and
 * timestamps as ISO text exact to the microsecond, `microsToTimestampText`), or an object/array (json).
 * The built-in sources give timestamps as that text and json as the database's own text.
 */
export type RowValue = null | boolean | number | bigint | string | Uint8Array | Date | object;

export interface QueryCursor {
  readonly columns: readonly Column[];
  batches(batchSize: number): AsyncIterable<RowValue[][]>;
  /**
   * The same rows as column-major batches of at most `batchSize` rows; offered only by a source that
   * was asked for `columnar` and can. A cursor is read once, through either method.
   */
  columnBatches?(batchSize: number): AsyncIterable<ColumnBatch>;
  close(): Promise<void>;
}
