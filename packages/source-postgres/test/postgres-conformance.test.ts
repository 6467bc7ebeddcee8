import type { DataSource } from '@backhaul/core';
import { runDataSourceConformance } from '@backhaul/core/testing';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { adminQuery, postgresService, postgresUrl, uniqueTableName } from './postgres-service.js';

/** The same source with every query asked for column batches: file mode's reader through the whole suite. */
function asColumnar(source: DataSource): DataSource {
  return {
    ...source,
    query: (request) => source.query({ ...request, columnar: true }),
    close: () => source.close(),
  };
}

for (const columnar of [false, true]) {
  postgresService.describe(`postgres source${columnar ? ', columnar' : ''}`, () => {
    runDataSourceConformance(columnar ? 'postgres (columnar)' : 'postgres', async () => {
      const table = uniqueTableName('conformance');
      await adminQuery(
        `CREATE TABLE ${table} AS
         SELECT id::int8 AS id, 'name-' || id AS name, (id * 1.5)::float8 AS amount,
                id % 2 = 0 AS active, CASE WHEN id % 10 = 0 THEN NULL ELSE 'note-' || id END AS note
         FROM generate_series(1, 1000) AS id`,
      );
      return {
        // A pool of 2: a cursor whose close() leaked its connection would exhaust it within the suite.
        source: (columnar ? asColumnar : (source: DataSource) => source)(
          createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 }),
        ),
        fixtureSql: `SELECT id, name, amount, active, note FROM ${table} ORDER BY id`,
        paramSql: `SELECT id, name, amount, active, note FROM ${table} WHERE id = $1`,
        slowSql: 'SELECT 1 AS pause FROM pg_sleep(600)',
        cleanup: async () => {
          await adminQuery(`DROP TABLE IF EXISTS ${table}`);
        },
      };
    });
  });
}
