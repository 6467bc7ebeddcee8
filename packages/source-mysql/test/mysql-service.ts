import { randomUUID } from 'node:crypto';
import mysql from 'mysql2';
import { beforeAll } from 'vitest';

/**
 * The MySQL/MariaDB the tests run against, and whether it answers. On a laptop without it the
 * suites skip with a warning; CI sets BACKHAUL_REQUIRE_SERVICES=1, which turns that skip into a failure.
 */
export const mysqlUrl = process.env.BACKHAUL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
export const servicesRequired = process.env.BACKHAUL_REQUIRE_SERVICES === '1';

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

async function probe(): Promise<string | undefined> {
  try {
    await adminQuery('SELECT 1');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message || String(error) : String(error);
  }
}

const unreachable = await probe();
export const mysqlReachable = unreachable === undefined;
/** True when the suites should not run at all: no MySQL, and nobody requires it. */
export const skipMysqlSuites = !mysqlReachable && !servicesRequired;

if (skipMysqlSuites) {
  console.warn(
    `\n⚠ SKIPPING @backhaul/source-mysql tests: MySQL at ${mysqlUrl} is unreachable (${unreachable}). ` +
      'Start MariaDB/MySQL, or set BACKHAUL_MYSQL_URL; BACKHAUL_REQUIRE_SERVICES=1 makes this a failure.\n',
  );
}

/** Call first inside the suite: fails every test of it when MySQL is required but unreachable. */
export function requireMysql(): void {
  beforeAll(() => {
    if (!mysqlReachable) {
      throw new Error(
        `MySQL at ${mysqlUrl} is unreachable (${unreachable}) and BACKHAUL_REQUIRE_SERVICES=1 requires it`,
      );
    }
  });
}

/** A table name no other test file or run uses. */
export function uniqueTableName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}
