/**
 * Rows as an aligned text table for a terminal: a header, a rule, one line per row. Numbers are
 * right-aligned; NULL is spelled out; a value with a line break or tab is shown escaped, so one
 * row is always one line.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = rows.map((row) => headers.map((_, index) => cellText(row[index])));
  const numeric = headers.map((_, index) =>
    rows.every(
      (row) => row[index] === null || typeof row[index] === 'number' || typeof row[index] === 'bigint',
    ),
  );
  const widths = headers.map((header, index) =>
    Math.max(header.length, ...cells.map((row) => (row[index] ?? '').length)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, index) => {
        const width = widths[index] ?? 0;
        return numeric[index] ? value.padStart(width) : value.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...cells.map(line)]
    .map((text) => `${text}\n`)
    .join('');
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  const text =
    typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return text.replace(/[\n\r\t]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}
