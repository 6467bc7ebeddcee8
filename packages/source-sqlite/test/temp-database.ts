import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** A SQLite file filled by `setup`, in a temp dir the returned cleanup removes. */
export function tempDatabase(setup: (db: Database.Database) => void): {
  filename: string;
  cleanup(): Promise<void>;
} {
  const dir = mkdtempSync(join(tmpdir(), 'backhaul-sqlite-'));
  const filename = join(dir, 'test.db');
  const db = new Database(filename);
  setup(db);
  db.close();
  return { filename, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
}
