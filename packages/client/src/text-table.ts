/**
 * Rows as an aligned text table for a terminal: a header, a rule, one line per row. Numbers are
 * right-aligned; NULL is spelled out; a value with a line break or tab is shown escaped, so one
 * row is always one line.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return tableWriter(headers).write(rows);
}

/** A table printed as its rows arrive, batch by batch (a live query's row batches). */
export interface TableWriter {
  /** The lines of these rows; the first call also gives the header and the rule. */
  write(rows: readonly (readonly unknown[])[]): string;
  /** Whether the header was written. */
  readonly started: boolean;
}

/**
 * Widths and alignment are settled by the first rows written, as `renderTable` settles them by all
 * rows; a later, wider value widens its column from that line on (lines already printed stay).
 */
export function tableWriter(headers: readonly string[]): TableWriter {
  let widths: number[] | undefined;
  let numeric: boolean[] = [];
  const line = (values: readonly string[]) =>
    values
      .map((value, index) => {
        const width = widths?.[index] ?? 0;
        return numeric[index] ? value.padStart(width) : value.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return {
    get started() {
      return widths !== undefined;
    },
    write(rows) {
      const cells = rows.map((row) => headers.map((_, index) => cellText(row[index])));
      const first = widths === undefined;
      if (first) {
        numeric = headers.map((_, index) =>
          rows.every(
            (row) => row[index] === null || typeof row[index] === 'number' || typeof row[index] === 'bigint',
          ),
        );
      }
      const settled = widths ?? headers.map((header) => header.length);
      widths = settled;
      for (const row of cells) {
        row.forEach((text, index) => {
          settled[index] = Math.max(settled[index] ?? 0, text.length);
        });
      }
      const lines = cells.map(line);
      if (first) lines.unshift(line(headers), settled.map((width) => '-'.repeat(width)).join('  '));
      return lines.map((text) => `${text}\n`).join('');
    },
  };
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  const text =
    typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return text.replace(/[\n\r\t]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}
