import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { beforeAll } from 'vitest';

/**
 * The PostgreSQL the tests run against, and whether it answers. On a laptop without it the suites
 * skip with a warning; CI sets BACKHAUL_REQUIRE_SERVICES=1, which turns that skip into a failure.
 */
export const postgresUrl = process.env.BACKHAUL_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const servicesRequired = process.env.BACKHAUL_REQUIRE_SERVICES === '1';

async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message || String(error) : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const unreachable = await probe();
export const postgresReachable = unreachable === undefined;
/** True when the suites should not run at all: no PostgreSQL, and nobody requires it. */
export const skipPostgresSuites = !postgresReachable && !servicesRequired;

if (skipPostgresSuites) {
  console.warn(
    `\n⚠ SKIPPING @backhaul/source-postgres tests: PostgreSQL at ${postgresUrl} is unreachable (${unreachable}). ` +
      'Start PostgreSQL, or set BACKHAUL_POSTGRES_URL; BACKHAUL_REQUIRE_SERVICES=1 makes this a failure.\n',
  );
}

/** Call first inside the suite: fails every test of it when PostgreSQL is required but unreachable. */
export function requirePostgres(): void {
  beforeAll(() => {
    if (!postgresReachable) {
      throw new Error(
        `PostgreSQL at ${postgresUrl} is unreachable (${unreachable}) and BACKHAUL_REQUIRE_SERVICES=1 requires it`,
      );
    }
  });
}

/** A table name no other test file or run uses. */
export function uniqueTableName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/** Runs SQL outside any data source (fixtures, checks), on a connection of its own. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  params: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end();
  }
}
