import { runDataSourceConformance } from '@backhaul/core/testing';
import { createSqliteDataSource } from '../src/index.js';
import { tempDatabase } from './temp-database.js';

runDataSourceConformance('sqlite', async () => {
  const { filename, cleanup } = tempDatabase((db) => {
    db.exec(
      'CREATE TABLE fixture (id INTEGER PRIMARY KEY, name TEXT, amount REAL, active BOOLEAN, note TEXT)',
    );
    const insert = db.prepare('INSERT INTO fixture VALUES (?, ?, ?, ?, ?)');
    db.transaction(() => {
      for (let id = 1; id <= 1000; id++) {
        insert.run(id, `name-${id}`, id * 1.5, id % 2 === 0 ? 1 : 0, id % 10 === 0 ? null : `note-${id}`);
      }
    })();
  });
  return {
    source: createSqliteDataSource({ filename }),
    fixtureSql: 'SELECT id, name, amount, active, note FROM fixture ORDER BY id',
    paramSql: 'SELECT id, name, amount, active, note FROM fixture WHERE id = ?',
    // Endless, a row every thousand steps: SQLite is stopped between rows (see the source's docs).
    slowSql:
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c WHERE x % 1000 = 0',
    cleanup,
  };
});
