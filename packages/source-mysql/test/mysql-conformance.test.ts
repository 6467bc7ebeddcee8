import { runDataSourceConformance } from '@backhaul/core/testing';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import { adminQuery, mysqlService, mysqlUrl, uniqueTableName } from './mysql-service.js';

mysqlService.describe('mysql source', () => {
  runDataSourceConformance('mysql', async () => {
    const table = uniqueTableName('conformance');
    await adminQuery(
      `CREATE TABLE ${table} (id BIGINT PRIMARY KEY, name VARCHAR(32), amount DOUBLE, active BOOLEAN, note VARCHAR(32))`,
    );
    // A recursive CTE, so the fixture does not depend on MariaDB's SEQUENCE engine.
    await adminQuery(
      `INSERT INTO ${table}
         WITH RECURSIVE ids (id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM ids WHERE id < 1000)
         SELECT id, CONCAT('name-', id), id * 1.5, id % 2 = 0, IF(id % 10 = 0, NULL, CONCAT('note-', id)) FROM ids`,
    );
    return {
      // A pool of 2: a cursor whose close() leaked its connection would exhaust it within the suite.
      source: createMysqlDataSource({ uri: mysqlUrl, poolSize: 2 }),
      fixtureSql: `SELECT id, name, amount, active, note FROM ${table} ORDER BY id`,
      paramSql: `SELECT id, name, amount, active, note FROM ${table} WHERE id = ?`,
      slowSql: 'SELECT SLEEP(600) AS pause',
      cleanup: async () => {
        await adminQuery(`DROP TABLE IF EXISTS ${table}`);
      },
    };
  });
});
