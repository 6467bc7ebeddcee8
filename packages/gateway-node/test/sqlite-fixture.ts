import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** A SQLite file with an `orders` table of `rows` rows, in a temp dir the returned cleanup removes. */
export function createOrdersDatabase(rows: number): { filename: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'backhaul-gateway-'));
  const filename = join(dir, 'orders.db');
  const db = new Database(filename);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    amount REAL,
    quantity INTEGER,
    paid BOOLEAN,
    note TEXT
  )`);
  const insert = db.prepare(
    'INSERT INTO orders (id, customer, amount, quantity, paid, note) VALUES (?, ?, ?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (let id = 1; id <= rows; id++) {
      insert.run(
        id,
        `customer-${id % 997}`,
        (id * 37) / 100,
        id % 13,
        id % 2,
        id % 7 === 0 ? null : `note ${id}`,
      );
    }
  })();
  db.close();
  return { filename, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
