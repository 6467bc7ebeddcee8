import type { Column } from '@backhaul/core';
import type { QueryEvent } from './backhaul-client.js';
import type { CommandIo } from './command-line.js';
import { type TableWriter, tableWriter } from './text-table.js';

/**
 * What `backhaul query` prints while a query runs (docs/protocol.md §3.3, §3.9): each row batch
 * as a table as it arrives, so a rows query, and an `auto` query until it switches to a file,
 * shows its head before it ends. Counts the rows printed so the end can tell what is missing.
 */
export interface LiveRows {
  onEvent(event: QueryEvent): void;
  /** Rows printed so far. */
  readonly printed: number;
  /** Prints rows the events did not carry (a stream that gave up), under `columns` if none came. */
  print(columns: readonly Column[], rows: readonly (readonly unknown[])[]): void;
  /** Ends the table: a result without rows still gets its header. */
  finish(columns: readonly Column[]): void;
}

export function liveRows(io: CommandIo): LiveRows {
  let table: TableWriter | undefined;
  let printed = 0;
  const tableOf = (columns: readonly Column[]) => {
    table ??= tableWriter(columns.map((column) => column.name));
    return table;
  };
  const print = (columns: readonly Column[], rows: readonly (readonly unknown[])[]) => {
    if (rows.length === 0) return;
    io.out(tableOf(columns).write(rows));
    printed += rows.length;
  };
  let columns: readonly Column[] = [];
  return {
    get printed() {
      return printed;
    },
    onEvent(event) {
      if (event.type === 'rows') {
        // Batch 0 names the columns; it is the first batch a stream sends.
        columns = event.columns ?? columns;
        print(columns, event.rows);
      } else if (event.type === 'switched') {
        io.err(
          `${event.query.liveRows ?? printed} rows so far; the result passed the row limit and goes on as a Parquet file of every row\n`,
        );
      }
    },
    print: (fallback, rows) => print(columns.length > 0 ? columns : fallback, rows),
    finish(fallback) {
      const writer = tableOf(columns.length > 0 ? columns : fallback);
      if (!writer.started) io.out(writer.write([]));
    },
  };
}
