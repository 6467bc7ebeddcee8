import { randomUUID } from 'node:crypto';
import { probeService } from '@backhaul/core/testing';
import pg from 'pg';

/** The PostgreSQL the tests run against (BACKHAUL_POSTGRES_URL), probed once per test file. */
export const postgresUrl = process.env.BACKHAUL_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const postgresService = await probeService(
  'PostgreSQL',
  async () => {
    const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => undefined);
    }
  },
  {
    at: postgresUrl,
    skipping: '@backhaul/source-postgres tests',
    hint: 'Start PostgreSQL, or set BACKHAUL_POSTGRES_URL',
  },
);

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
