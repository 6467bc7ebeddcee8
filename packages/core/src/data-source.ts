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
  signal?: AbortSignal;
}

/**
 * Row values are plain JS: null, boolean, number, bigint (int64 beyond 2^53), string,
 * Uint8Array (binary), Date (timestamp, date), or an object/array (json).
 */
export type RowValue = null | boolean | number | bigint | string | Uint8Array | Date | object;

export interface QueryCursor {
  readonly columns: readonly Column[];
  batches(batchSize: number): AsyncIterable<RowValue[][]>;
  close(): Promise<void>;
}
