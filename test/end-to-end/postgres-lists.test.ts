import { createPostgresDataSource } from '@backhaul/source-postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../support/duckdb-reader.js';
import { gatewayId, type Harness, startHarness } from '../support/harness.js';
import { describeWithServices, postgresService, postgresUrl } from '../support/production-services.js';

/*
 * PostgreSQL arrays end to end: a real server, a real gateway, the client SDK. The caller sees list
 * columns with their element type, JSON arrays in rows mode, and Parquet LISTs in the file.
 */

const SQL = `SELECT g AS id,
    CASE WHEN g % 3 = 0 THEN NULL ELSE ARRAY[g, NULL, 9007199254740993] END AS nums,
    CASE WHEN g % 4 = 0 THEN '{}'::text[] ELSE ARRAY['a,b', 'say "hi"'] END AS tags,
    ARRAY[date '2024-02-29' + g] AS days
  FROM generate_series(1, 50) g ORDER BY g`;

/** Row g as rows mode's JSON carries it. */
function expectedRow(g: number): unknown[] {
  const day = new Date(Date.UTC(2024, 1, 29 + g)).toISOString().slice(0, 10);
  return [
    g,
    g % 3 === 0 ? null : [g, null, '9007199254740993'],
    g % 4 === 0 ? [] : ['a,b', 'say "hi"'],
    [day],
  ];
}

describeWithServices([postgresService], 'PostgreSQL arrays as lists, caller to database and back', () => {
  let harness: Harness;
  let duck: DuckDbReader;

  beforeAll(async () => {
    harness = await startHarness({
      dataSource: () => createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 }),
    });
    await harness.startGateway({ rowBatchSize: 20 });
    duck = await openDuckDb();
  });

  afterAll(async () => {
    duck?.close();
    await harness?.close();
  });

  it('rows mode: list columns name their element type, values are JSON arrays', async () => {
    const submitted = await harness.client.submit({ gatewayId, sql: SQL, mode: 'rows' });
    const final = await harness.client.waitFor(submitted.id);
    expect(final.state).toBe('completed');
    const result = await harness.client.rows(submitted.id);
    expect(result.columns).toEqual([
      { name: 'id', type: 'int32', nullable: true },
      { name: 'nums', type: 'list', nullable: true, element: { type: 'int64' } },
      { name: 'tags', type: 'list', nullable: true, element: { type: 'string' } },
      { name: 'days', type: 'list', nullable: true, element: { type: 'date' } },
    ]);
    expect(result.rows).toEqual(Array.from({ length: 50 }, (_, i) => expectedRow(i + 1)));
  });

  it('file mode: the downloaded Parquet holds LISTs DuckDB reads with their values', async () => {
    const submitted = await harness.client.submit({ gatewayId, sql: SQL, mode: 'file' });
    const final = await harness.client.waitFor(submitted.id);
    if (final.result?.kind !== 'file') throw new Error(`no file result: ${JSON.stringify(final)}`);
    const bytes = new Uint8Array(await (await fetch(final.result.url)).arrayBuffer());
    const path = await duck.file(bytes);
    expect((await duck.describe(path)).map((c) => c.type)).toEqual([
      'INTEGER',
      'BIGINT[]',
      'VARCHAR[]',
      'DATE[]',
    ]);
    const rows = await duck.rows(path, { select: 'id, nums, tags, days::VARCHAR[] AS days', orderBy: 'id' });
    expect(rows.map((row) => [row.id, row.nums, row.tags, row.days])).toEqual(
      Array.from({ length: 50 }, (_, i) => {
        const [g, nums, tags, days] = expectedRow(i + 1) as [
          number,
          (number | string | null)[] | null,
          string[],
          string[],
        ];
        return [g, nums === null ? null : nums.map((v) => (v === null ? null : BigInt(v))), tags, days];
      }),
    );
  });
});
