import type { Column } from './protocol.js';

/**
 * A result's columns with names that are unique and non-empty, as Parquet, row batches keyed by name
 * and every data-frame reader need. `SELECT * FROM t a JOIN t b` or PostgreSQL's `SELECT 1, 2` name
 * two columns alike: the first keeps its name, the next ones get `_1`, `_2`… (DuckDB's own rule), a
 * suffix skipping any name the result already has. An empty name becomes `column_N`, N its
 * 1-based position. Returns the same array when nothing had to change.
 */
export function uniqueColumnNames<T extends Pick<Column, 'name'>>(columns: readonly T[]): readonly T[] {
  const taken = new Set<string>();
  let clash = false;
  for (const { name } of columns) {
    if (name === '' || taken.has(name)) clash = true;
    taken.add(name);
  }
  if (!clash) return columns;
  const assigned = new Set<string>();
  return columns.map((column, index) => {
    let name = column.name === '' ? `column_${index + 1}` : column.name;
    if (assigned.has(name)) {
      let suffix = 1;
      while (taken.has(`${name}_${suffix}`) || assigned.has(`${name}_${suffix}`)) suffix++;
      name = `${name}_${suffix}`;
    }
    assigned.add(name);
    return name === column.name ? column : { ...column, name };
  });
}
