import { randomUUID } from 'node:crypto';
import { probeService } from '@backhaul/core/testing';
import mysql from 'mysql2';

/** The MySQL/MariaDB the tests run against (BACKHAUL_MYSQL_URL), probed once per test file. */
export const mysqlUrl = process.env.BACKHAUL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** Runs SQL outside any data source (fixtures, checks), on a connection of its own. */
export function adminQuery<T = unknown>(sql: string, values: unknown[] = []): Promise<T> {
  return new Promise((resolve, reject) => {
    const connection = mysql.createConnection({
      uri: mysqlUrl,
      connectTimeout: 2000,
      multipleStatements: true,
    });
    connection.on('error', () => undefined);
    connection.query(sql, values, (error, result) => {
      connection.destroy();
      if (error) reject(error);
      else resolve(result as T);
    });
  });
}

export const mysqlService = await probeService(
  'MySQL',
  async () => {
    await adminQuery('SELECT 1');
  },
  {
    at: mysqlUrl,
    skipping: '@backhaul/source-mysql tests',
    hint: 'Start MariaDB/MySQL, or set BACKHAUL_MYSQL_URL',
  },
);

/** A table name no other test file or run uses. */
export function uniqueTableName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}
