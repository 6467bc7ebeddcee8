import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/**
 * The demo's SQLite database: an `orders` table of mixed types, the same rows on every machine.
 * SQLite generates the rows itself (a recursive CTE and an integer hash), which is several times
 * faster than inserting them from JS.
 */
export const ordersSchema = `
CREATE TABLE orders (
  id             INTEGER PRIMARY KEY,
  customer_id    INTEGER NOT NULL,
  customer_email TEXT    NOT NULL,
  country        TEXT    NOT NULL,
  status         TEXT    NOT NULL,
  amount         DECIMAL(12,2) NOT NULL,
  quantity       INTEGER NOT NULL,
  discount       REAL,
  is_gift        BOOLEAN NOT NULL,
  created_at     TIMESTAMP NOT NULL,
  shipped_on     DATE,
  note           TEXT
)`;

// h(n, k): a deterministic 31-bit hash of row n for the k-th column, so columns are uncorrelated.
const h = (k: number) => `((n * 2654435761 + ${k * 97531}) % 2147483647)`;

const ordersInsert = `
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
INSERT INTO orders
SELECT
  n,
  ${h(1)} % 250000,
  'customer' || (${h(1)} % 250000) || '@'
    || CASE ${h(2)} % 4 WHEN 0 THEN 'example.com' WHEN 1 THEN 'mail.net' WHEN 2 THEN 'shop.io' ELSE 'corp.org' END,
  substr('USCADEFRGBESITNLBRMXJPAUINSECH', 1 + 2 * (${h(3)} % 15), 2),
  CASE ${h(4)} % 10 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'pending' WHEN 2 THEN 'refunded' ELSE 'shipped' END,
  round((${h(5)} % 5000000) / 100.0, 2),
  1 + ${h(6)} % 12,
  CASE WHEN ${h(7)} % 4 = 0 THEN NULL ELSE (${h(7)} % 3000) / 10000.0 END,
  ${h(8)} % 7 = 0,
  1672531200000 + (${h(9)} % 63072000) * 1000,
  CASE WHEN ${h(4)} % 10 < 3 THEN NULL
       ELSE date(1672531200 + (${h(9)} % 63072000) + 86400 * (1 + ${h(10)} % 9), 'unixepoch') END,
  CASE WHEN ${h(11)} % 3 = 0 THEN NULL
       ELSE 'Leave at the ' || rtrim(substr('front doorback porchreception garage    ', 1 + 10 * (${h(12)} % 4), 10))
            || ', ref ' || printf('%08X', ${h(13)}) END
FROM seq`;

export interface DemoDatabase {
  path: string;
  rows: number;
  /** Milliseconds spent generating, 0 when the file was already there. */
  generatedMs: number;
}

export function ensureDemoDatabase(path: string, rows: number): DemoDatabase {
  if (existsSync(path)) {
    const db = new Database(path, { readonly: true });
    try {
      const found = (db.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n;
      if (found === rows) return { path, rows, generatedMs: 0 };
    } catch {
      // Not our schema or a broken file: build it again below.
    } finally {
      db.close();
    }
  }
  const started = performance.now();
  mkdirSync(dirname(path), { recursive: true });
  // Build beside the target and rename, so an interrupted run never leaves a half-filled database.
  const building = `${path}.building`;
  rmSync(building, { force: true });
  const db = new Database(building);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.exec(ordersSchema);
  db.prepare(ordersInsert).run(rows);
  db.close();
  renameSync(building, path);
  return { path, rows, generatedMs: Math.round(performance.now() - started) };
}
