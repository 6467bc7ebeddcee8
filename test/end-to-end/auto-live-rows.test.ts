import type { QueryEvent } from '@backhaul/client';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from '../support/duckdb-reader.js';
import { callerToken, gatewayId, type Harness, startHarness } from '../support/harness.js';
import {
  describeWithServices,
  postgresAdmin,
  postgresService,
  postgresUrl,
  uniqueName,
} from '../support/production-services.js';

/*
 * Auto mode end to end (docs/protocol.md §3.9) on PostgreSQL: a real server, a real gateway, the
 * client SDK. Rows flow to the caller as they come off the cursor; a result that passes
 * `rowsByteLimit` (set low here) goes on as a Parquet file holding every row, the live ones first.
 */

const ROWS = 5000;
/** Far below a real deployment's 8 MiB, so 5000 rows pass it and 250 stay under it. */
const ROWS_BYTE_LIMIT = 20_000;

/** Row `id` exactly as the source returns it: int4, text, float8 (quarters are exact), text with NULLs. */
function expectedRow(id: number): unknown[] {
  return [id, `label-${id}`, id / 4, id % 7 === 0 ? null : `note ${id} ü`];
}

/** The events of a query, in order, as the client gives them. */
async function follow(harness: Harness, id: string): Promise<QueryEvent[]> {
  const events: QueryEvent[] = [];
  for await (const event of harness.client.follow(id)) events.push(event);
  return events;
}

const rowsOf = (events: QueryEvent[]) => events.flatMap((event) => (event.type === 'rows' ? event.rows : []));
const kinds = (events: QueryEvent[]) =>
  events.map((event) => event.type).filter((type) => type !== 'progress');

describeWithServices(
  [postgresService],
  'auto mode on PostgreSQL: rows live, then a file of every row',
  () => {
    const table = uniqueName('auto_live');
    const select = `SELECT id, label, score, note FROM ${table}`;
    let harness: Harness;
    let duck: DuckDbReader;

    beforeAll(async () => {
      await postgresAdmin(
        `CREATE TABLE ${table} (id int4 PRIMARY KEY, label text NOT NULL, score float8 NOT NULL, note text);
       INSERT INTO ${table}
         SELECT i, 'label-' || i, i / 4.0, CASE WHEN i % 7 = 0 THEN NULL ELSE 'note ' || i || ' ü' END
         FROM generate_series(1, ${ROWS}) AS i`,
      );
      harness = await startHarness({
        dataSource: () => createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 }),
        server: { rowsByteLimit: ROWS_BYTE_LIMIT },
      });
      // Batches of 100 rows: a small result is several batches, a large one many before the switch.
      await harness.startGateway({ rowBatchSize: 100 });
      duck = await openDuckDb();
    });

    afterAll(async () => {
      duck?.close();
      await harness?.close();
      await postgresAdmin(`DROP TABLE IF EXISTS ${table}`);
    });

    it('a small result arrives live, batch by batch, while the query still runs on the database', async () => {
      // Row 101 waits for an advisory lock this test holds: the query cannot end until the test
      // has seen the first batch, so that batch can only have come live.
      const key = Math.floor(Math.random() * 2 ** 31);
      const gate = new pg.Client({ connectionString: postgresUrl });
      await gate.connect();
      const events: QueryEvent[] = [];
      try {
        await gate.query('SELECT pg_advisory_lock($1)', [key]);
        const { id } = await harness.client.submit({
          gatewayId,
          sql: `SELECT i AS id, 'label-' || i AS label, i::float8 / 4 AS score,
                CASE WHEN i % 7 = 0 THEN NULL ELSE 'note ' || i || ' ü' END AS note
              FROM generate_series(1, 250) AS i
              WHERE CASE WHEN i = 101 THEN pg_advisory_xact_lock_shared(${key})::text = '' ELSE true END`,
        });
        let released = false;
        for await (const event of harness.client.follow(id)) {
          events.push(event);
          if (event.type === 'rows' && event.rows.length > 0 && !released) {
            expect(event.rows).toEqual(Array.from({ length: 100 }, (_, i) => expectedRow(i + 1)));
            expect(['acknowledged', 'running']).toContain((await harness.client.get(id)).state);
            await gate.query('SELECT pg_advisory_unlock($1)', [key]);
            released = true;
          }
        }
        // GET …/result gives the same rows the events carried.
        expect((await harness.client.rows(id)).rows).toEqual(rowsOf(events));
      } finally {
        await gate.end();
      }
      const order = kinds(events);
      expect(order.filter((kind) => kind === 'rows')).toHaveLength(3);
      expect(order.lastIndexOf('rows')).toBeLessThan(order.indexOf('result'));
      expect(order).not.toContain('switched');
      expect(rowsOf(events)).toEqual(Array.from({ length: 250 }, (_, i) => expectedRow(i + 1)));
      const final = events.at(-1);
      expect(final).toMatchObject({
        type: 'result',
        query: { state: 'completed', result: { kind: 'rows', rowCount: 250 } },
      });
      // No switch, so no liveRows: every row is in the rows result.
      expect(final?.type === 'result' && 'liveRows' in final.query).toBe(false);
    });

    it('a large result sends its head live, switches, and ends with a file of all rows, the live ones first', async () => {
      const { id } = await harness.client.submit({ gatewayId, sql: `${select} ORDER BY id`, mode: 'auto' });
      const events = await follow(harness, id);
      const order = kinds(events);
      const switchedAt = order.indexOf('switched');
      // Live rows first, then the switch, then no more rows: the result ends the stream.
      expect(order.indexOf('rows')).toBeLessThan(switchedAt);
      expect(order.lastIndexOf('rows')).toBeLessThan(switchedAt);
      expect(order.at(-1)).toBe('result');
      expect(order.filter((kind) => kind === 'switched')).toHaveLength(1);

      const live = rowsOf(events);
      expect(live.length).toBeGreaterThan(0);
      expect(live.length).toBeLessThan(ROWS);
      expect(live).toEqual(Array.from({ length: live.length }, (_, i) => expectedRow(i + 1)));
      // What was sent live stayed within the limit, as the gateway weighs it (UTF-8 JSON of the rows).
      const liveBytes = events.reduce(
        (sum, event) => sum + (event.type === 'rows' ? Buffer.byteLength(JSON.stringify(event.rows)) : 0),
        0,
      );
      expect(liveBytes).toBeLessThanOrEqual(ROWS_BYTE_LIMIT);

      const switched = events.find((event) => event.type === 'switched');
      expect(switched?.type === 'switched' && switched.query.liveRows).toBe(live.length);
      const final = events.at(-1);
      if (final?.type !== 'result' || final.query.result?.kind !== 'file') throw new Error('no file result');
      expect(final.query).toMatchObject({ state: 'completed', liveRows: live.length });
      expect(final.query.result.rowCount).toBe(ROWS);

      // The file, read back by DuckDB in file order: every row once, values exact, the live rows first.
      const bytes = new Uint8Array(await (await fetch(final.query.result.url)).arrayBuffer());
      expect(bytes.length).toBe(final.query.result.size);
      const path = await duck.file(bytes);
      const fileRows = (
        await duck.query(
          `SELECT id, label, score, note FROM read_parquet('${path}', file_row_number = true) ORDER BY file_row_number`,
        )
      ).map((row) => [row.id, row.label, row.score, row.note]);
      expect(fileRows).toEqual(Array.from({ length: ROWS }, (_, i) => expectedRow(i + 1)));
      expect(fileRows.slice(0, live.length)).toEqual(live);

      // GET …/result points at that file; the view says how many rows went live.
      const view = await harness.client.get(id);
      expect(view.liveRows).toBe(live.length);
      const redirect = await fetch(`${harness.url}/v1/queries/${id}/result`, {
        headers: { authorization: `Bearer ${callerToken}` },
        redirect: 'manual',
      });
      expect(redirect.status).toBe(303);
    });

    it('run() in auto gives the rows as they come, then resolves with the file result', async () => {
      const seen: QueryEvent[] = [];
      const { query, rows } = await harness.client.run(
        { gatewayId, sql: `${select} ORDER BY id` },
        { onEvent: (event) => seen.push(event) },
      );
      expect(rows).toBeUndefined();
      expect(query.result).toMatchObject({ kind: 'file', rowCount: ROWS });
      const live = rowsOf(seen);
      expect(live.length).toBeGreaterThan(0);
      expect(query.liveRows).toBe(live.length);
      expect(live).toEqual(Array.from({ length: live.length }, (_, i) => expectedRow(i + 1)));
      const order = kinds(seen);
      expect(order.lastIndexOf('rows')).toBeLessThan(order.indexOf('switched'));
    });
  },
);
