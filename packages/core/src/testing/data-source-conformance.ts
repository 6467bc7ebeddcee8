import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataSource, QueryCursor, RowValue } from '../data-source.js';
import { BackhaulError } from '../errors.js';
import type { ColumnType } from '../protocol.js';

/**
 * The table every data source adapter creates for the conformance suite, in its own dialect.
 * The suite checks values against `expectedRow`, so the adapter's SQL must return exactly this.
 */
export const dataSourceFixture = {
  rowCount: 1000,
  columns: ['id', 'name', 'amount', 'active', 'note'] as const,
  /** What to create, in words an adapter author can turn into DDL and inserts. */
  description:
    'A table with ids 1..1000 (int64), name = "name-<id>" (string), amount = id * 1.5 (float64), ' +
    'active = (id % 2 = 0) (boolean), note (nullable string) = "note-<id>", or NULL when id % 10 = 0. ' +
    '`fixtureSql` is `SELECT id, name, amount, active, note FROM <table> ORDER BY id`; `paramSql` is the ' +
    'same select with `WHERE id = <placeholder>` and is run with the single parameter 42.',
  /** The row with this id, as the suite expects it after lenient coercion. */
  expectedRow(id: number): [number, string, number, boolean, string | null] {
    return [id, `name-${id}`, id * 1.5, id % 2 === 0, id % 10 === 0 ? null : `note-${id}`];
  },
} as const;

export interface DataSourceConformanceSetup {
  source: DataSource;
  /** SQL returning exactly the fixture (see `dataSourceFixture`), ordered by id. */
  fixtureSql: string;
  /** The fixture's select with `WHERE id = <placeholder>`, run with params [42]. */
  paramSql: string;
  /**
   * A statement that would run far longer than any test (minutes), e.g. PostgreSQL
   * `SELECT pg_sleep(600)` or MySQL `SELECT SLEEP(600)`. The suite aborts it while it runs and
   * expects it to end with the signal's reason; a source that can only stop between rows (SQLite)
   * gives one that yields rows as it goes. Optional: without it that case is skipped, named.
   */
  slowSql?: string;
  cleanup?: () => Promise<void>;
}

/**
 * Databases disagree on how they report types: SQLite has no boolean, MySQL's BIGINT may arrive
 * as a decimal, PostgreSQL's NUMERIC is `decimal`. The suite is strict on names and order and
 * lenient on these known differences.
 */
const acceptedTypes: Record<(typeof dataSourceFixture.columns)[number], readonly ColumnType[]> = {
  id: ['int32', 'int64', 'decimal'],
  name: ['string'],
  amount: ['float64', 'decimal'],
  active: ['boolean', 'int32', 'int64'],
  note: ['string'],
};

/** Brings a bigint, a decimal string, a number or a 0/1 boolean to the JS value the fixture states. */
function normalizeRow(row: readonly RowValue[]): unknown[] {
  const [id, name, amount, active, note] = row;
  return [
    Number(id),
    name,
    Number(amount),
    Boolean(typeof active === 'string' ? Number(active) : active),
    note,
  ];
}

async function collect(cursor: QueryCursor, batchSize: number): Promise<RowValue[][][]> {
  const batches: RowValue[][][] = [];
  for await (const batch of cursor.batches(batchSize)) batches.push(batch);
  return batches;
}

/**
 * The rules every `DataSource` must follow. An adapter calls this once from its own tests:
 *
 *     runDataSourceConformance('sqlite', async () => {
 *       const source = createSqliteSource({ filename: ':memory:' });
 *       // ... create and fill the fixture table ...
 *       return { source, fixtureSql: 'SELECT ... ORDER BY id', paramSql: 'SELECT ... WHERE id = ?' };
 *     });
 */
export function runDataSourceConformance(
  name: string,
  setup: () => Promise<DataSourceConformanceSetup>,
): void {
  describe(`DataSource conformance: ${name}`, () => {
    let fixture: DataSourceConformanceSetup;
    beforeAll(async () => {
      fixture = await setup();
    });
    afterAll(async () => {
      if (!fixture) return;
      await fixture.source.close();
      await fixture.cleanup?.();
    });

    const query = (
      sql: string,
      extra: { params?: (string | number | boolean | null)[]; maxRows?: number } = {},
    ) => fixture.source.query({ sql, params: extra.params ?? [], maxRows: extra.maxRows });

    it('reports the columns with their names in order and plausible types', async () => {
      const cursor = await query(fixture.fixtureSql);
      try {
        expect(cursor.columns.map((c) => c.name)).toEqual([...dataSourceFixture.columns]);
        for (const column of cursor.columns) {
          const accepted = acceptedTypes[column.name as keyof typeof acceptedTypes];
          expect(accepted, `type of column ${column.name}`).toContain(column.type);
        }
      } finally {
        await cursor.close();
      }
    });

    it('batches(100) yields 10 batches of 100 rows in order with exact values', async () => {
      const cursor = await query(fixture.fixtureSql);
      const batches = await collect(cursor, 100);
      await cursor.close();
      expect(batches.map((b) => b.length)).toEqual(Array(10).fill(100));
      const rows = batches.flat();
      expect(rows).toHaveLength(dataSourceFixture.rowCount);
      rows.forEach((row, index) => {
        expect(row).toHaveLength(dataSourceFixture.columns.length);
        expect(normalizeRow(row)).toEqual(dataSourceFixture.expectedRow(index + 1));
      });
    });

    it('maxRows: 10 lets at most 10 rows arrive (or rejects with an error)', async () => {
      // Either is acceptable: a source may stop at the cap or refuse to go past it. What it must
      // never do is hand the gateway more rows than the caller allowed.
      let received = 0;
      let failure: unknown;
      try {
        const cursor = await query(fixture.fixtureSql, { maxRows: 10 });
        try {
          for await (const batch of cursor.batches(3)) received += batch.length;
        } finally {
          await cursor.close();
        }
      } catch (error) {
        failure = error;
      }
      expect(received).toBeLessThanOrEqual(10);
      if (failure !== undefined) {
        expect(failure).toBeInstanceOf(Error);
        expect((failure as Error).message).not.toBe('');
      } else {
        // A source that stops at the cap must still deliver up to it: 10 of 1000 rows exist.
        expect(received).toBe(10);
      }
    });

    it('binds params: paramSql with [42] returns exactly the row whose id is 42', async () => {
      const cursor = await query(fixture.paramSql, { params: [42] });
      const rows = (await collect(cursor, 100)).flat();
      await cursor.close();
      expect(rows.map(normalizeRow)).toEqual([dataSourceFixture.expectedRow(42)]);
    });

    it("invalid SQL rejects with a BackhaulError code 'query-failed'", async () => {
      // Some drivers fail at prepare time, others only once rows are pulled: accept both.
      let failure: unknown;
      try {
        const cursor = await query('SELEC nonsense FROM nowhere_backhaul_conformance');
        try {
          await collect(cursor, 100);
        } finally {
          await cursor.close().catch(() => undefined);
        }
      } catch (error) {
        failure = error;
      }
      expect(BackhaulError.isInstance(failure), `expected a BackhaulError, got ${String(failure)}`).toBe(
        true,
      );
      expect((failure as BackhaulError).code).toBe('query-failed');
    });

    it('close() on a cursor mid-way releases it: a following query works', async () => {
      const cursor = await query(fixture.fixtureSql);
      const iterator = cursor.batches(10)[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.done).toBe(false);
      expect(first.value).toHaveLength(10);
      await cursor.close();
      // A second close is harmless: the gateway closes in `finally` after an error path closed too.
      await cursor.close();

      // Several rounds, so a source with a small pool would run out if close leaked a connection.
      for (let round = 0; round < 3; round++) {
        const again = await query(fixture.paramSql, { params: [42] });
        const rows = (await collect(again, 100)).flat();
        await again.close();
        expect(rows.map(normalizeRow)).toEqual([dataSourceFixture.expectedRow(42)]);
      }
    });

    it('an AbortSignal aborted mid-iteration stops iteration with an error', async () => {
      const controller = new AbortController();
      const cursor = await fixture.source.query({
        sql: fixture.fixtureSql,
        params: [],
        signal: controller.signal,
      });
      let received = 0;
      let failure: unknown;
      try {
        for await (const batch of cursor.batches(100)) {
          received += batch.length;
          if (received === 100) controller.abort(new Error('caller cancelled'));
        }
      } catch (error) {
        failure = error;
      } finally {
        await cursor.close().catch(() => undefined);
      }
      expect(failure, 'iteration must end with an error, not run to the end').toBeInstanceOf(Error);
      // Rows already read off the wire may still arrive, but not the whole result.
      expect(received).toBeLessThan(dataSourceFixture.rowCount);

      const after = await query(fixture.paramSql, { params: [42] });
      const rows = (await collect(after, 100)).flat();
      await after.close();
      expect(rows).toHaveLength(1);
    });

    it('an AbortSignal aborted while a long statement runs ends it with the reason, and the source goes on', async (context) => {
      const slowSql = fixture.slowSql;
      if (slowSql === undefined) {
        context.skip('no slowSql given for this source');
        return;
      }
      const controller = new AbortController();
      const reason = new BackhaulError('cancelled', 'the conformance suite cancelled the statement');
      // query() may itself wait for the statement (columns come with its first row): both halves
      // run under the signal, and the abort comes once the statement is under way.
      const running = (async () => {
        const cursor = await fixture.source.query({ sql: slowSql, params: [], signal: controller.signal });
        try {
          for await (const _batch of cursor.batches(100)) {
            // A source that yields rows as it goes: read on until the abort lands.
          }
        } finally {
          await cursor.close().catch(() => undefined);
        }
      })();
      const outcome = running.then(
        () => 'ran to its end' as const,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      controller.abort(reason);
      // A statement the source cannot stop runs for minutes: the test's timeout fails it.
      expect(await outcome).toBe(reason);

      const after = await query(fixture.paramSql, { params: [42] });
      const rows = (await collect(after, 100)).flat();
      await after.close();
      expect(rows.map(normalizeRow)).toEqual([dataSourceFixture.expectedRow(42)]);
    }, 30_000);
  });
}
