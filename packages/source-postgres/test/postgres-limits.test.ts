import type { DataSource } from '@backhaul/core';
import { batchSizesOf, expectBackhaulError } from '@backhaul/core/testing';
import { createPostgresDataSource, type PostgresDataSourceOptions } from '@backhaul/source-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresService, postgresUrl } from './postgres-service.js';

// Both readers: rows through pg-cursor, and the columnar reader file mode asks for.
for (const columnar of [false, true]) {
  /** A source whose every query asks for `columnar` or not, as this run of the suite says. */
  const make = (options: PostgresDataSourceOptions): DataSource => {
    const source = createPostgresDataSource(options);
    return {
      ...source,
      query: (request) => source.query({ ...request, columnar }),
      close: () => source.close(),
    };
  };

  postgresService.describe(`postgres source: limits (${columnar ? 'columnar' : 'rows'})`, () => {
    let source: DataSource;
    let pool: pg.Pool;
    beforeAll(() => {
      // A pool of 1: any leaked connection makes the next test hang instead of passing.
      pool = new pg.Pool({ connectionString: postgresUrl, max: 1 });
      source = make({ pool, statementTimeoutMs: 10_000 });
    });
    afterAll(async () => {
      await source?.close();
      await pool?.end();
    });

    describe('timeoutMs bounds the statement on the server', () => {
      it("SELECT pg_sleep(5) with timeoutMs 200 fails with 'timeout' well before 5 s", async () => {
        const started = Date.now();
        const failure = await expectBackhaulError(async () =>
          batchSizesOf(await source.query({ sql: 'SELECT pg_sleep(5)', params: [], timeoutMs: 200 }), 10),
        );
        expect(failure.code).toBe('timeout');
        expect(failure.retryable).toBe(true);
        expect(Date.now() - started).toBeLessThan(2000);
      });

      it('statementTimeoutMs applies when the request has none', async () => {
        const short = make({ pool, statementTimeoutMs: 200 });
        const failure = await expectBackhaulError(async () =>
          batchSizesOf(await short.query({ sql: 'SELECT pg_sleep(5)', params: [] }), 10),
        );
        expect(failure.code).toBe('timeout');
        await short.close();
      });

      it('a timeout mid-stream (a slow row after fast ones) also ends in timeout', async () => {
        const cursor = await source.query({
          sql: 'SELECT i, CASE WHEN i = 500 THEN pg_sleep(5) END FROM generate_series(1, 1000) AS i',
          params: [],
          timeoutMs: 300,
        });
        const failure = await expectBackhaulError(() => batchSizesOf(cursor, 100));
        expect(failure.code).toBe('timeout');
      });
    });

    describe('maxRows is a hard cap', () => {
      it('the request cap: no more rows than maxRows arrive, whatever the batch size', async () => {
        for (const batchSize of [1, 7, 1000]) {
          const cursor = await source.query({
            sql: 'SELECT * FROM generate_series(1, 1000)',
            params: [],
            maxRows: 250,
          });
          const sizes = await batchSizesOf(cursor, batchSize);
          expect(sizes.reduce((a, b) => a + b, 0)).toBe(250);
        }
      });

      it("the source's maxRows wins over a larger request", async () => {
        const capped = make({ pool, maxRows: 5 });
        const cursor = await capped.query({
          sql: 'SELECT * FROM generate_series(1, 1000)',
          params: [],
          maxRows: 100,
        });
        expect(await batchSizesOf(cursor, 100)).toEqual([5]);
        await capped.close();
      });
    });

    describe('an AbortSignal stops the query', () => {
      it('an abort during a slow fetch cancels it on the server at once', async () => {
        const controller = new AbortController();
        const cursor = await source.query({
          sql: 'SELECT i, CASE WHEN i = 200 THEN pg_sleep(8) END FROM generate_series(1, 1000) AS i',
          params: [],
          signal: controller.signal,
        });
        const started = Date.now();
        setTimeout(() => controller.abort(new Error('caller cancelled')), 200);
        await expect(batchSizesOf(cursor, 1000)).rejects.toThrow('caller cancelled');
        expect(Date.now() - started).toBeLessThan(3000);
        // The one connection of the pool is back and usable.
        expect(await batchSizesOf(await source.query({ sql: 'SELECT 1', params: [] }), 10)).toEqual([1]);
      });

      it('an already aborted signal rejects before anything runs', async () => {
        const controller = new AbortController();
        controller.abort(new Error('too late'));
        await expect(
          source.query({ sql: 'SELECT 1', params: [], signal: controller.signal }),
        ).rejects.toThrow('too late');
      });

      it('an abort while the first rows are fetched ends the query', async () => {
        const controller = new AbortController();
        setTimeout(() => controller.abort(new Error('stop now')), 200);
        const started = Date.now();
        // The row reader fetches its first rows inside query(); the columnar one only describes the
        // statement there, and fetches with the first batch.
        await expect(
          (async () =>
            batchSizesOf(
              await source.query({ sql: 'SELECT pg_sleep(8)', params: [], signal: controller.signal }),
              10,
            ))(),
        ).rejects.toThrow('stop now');
        expect(Date.now() - started).toBeLessThan(3000);
      });
    });

    describe('close() ends the query and returns the connection', () => {
      it('close() in the middle of a result, then many more queries on a pool of 1', async () => {
        for (let round = 0; round < 5; round++) {
          const cursor = await source.query({ sql: 'SELECT * FROM generate_series(1, 100000)', params: [] });
          const iterator = cursor.batches(10)[Symbol.asyncIterator]();
          expect((await iterator.next()).value).toHaveLength(10);
          await cursor.close();
        }
        expect(await batchSizesOf(await source.query({ sql: 'SELECT 1', params: [] }), 10)).toEqual([1]);
      });

      it('leaving the loop while the next batch is being read ahead cancels that read instead of waiting for it', async () => {
        // The read-ahead of rows 101–200 runs into a 60 s sleep at row 150: were it awaited, the
        // break below would hold the only connection for a minute and the test would time out.
        const patient = make({ pool, statementTimeoutMs: 120_000 });
        const cursor = await patient.query({
          sql: 'SELECT i, CASE WHEN i = 150 THEN pg_sleep(60) END AS s FROM generate_series(1, 1000) AS i',
          params: [],
        });
        let seen = 0;
        for await (const batch of cursor.batches(100)) {
          seen += batch.length;
          break;
        }
        expect(seen).toBe(100);
        expect(await batchSizesOf(await patient.query({ sql: 'SELECT 1', params: [] }), 10)).toEqual([1]);
        await patient.close();
      }, 30_000);

      it('close() of the data source closes cursors still open', async () => {
        const own = make({ connectionString: postgresUrl, poolSize: 1 });
        const cursor = await own.query({ sql: 'SELECT * FROM generate_series(1, 100000)', params: [] });
        await own.close();
        await expect(own.query({ sql: 'SELECT 1', params: [] })).rejects.toMatchObject({
          code: 'service-unavailable',
        });
        await cursor.close();
      });
    });

    describe('parameters', () => {
      it('binds strings, numbers, booleans and NULL as parameters, never as SQL text', async () => {
        const cursor = await source.query({
          sql: 'SELECT $1::text, $2::int, $3::float8, $4::boolean, $5::text IS NULL',
          params: ["'; DROP TABLE x; --", 42, 1.25, true, null],
        });
        const rows: unknown[][] = [];
        for await (const batch of cursor.batches(10)) rows.push(...batch);
        expect(rows).toEqual([["'; DROP TABLE x; --", 42, 1.25, true, true]]);
      });
    });

    describe('an unreachable database', () => {
      it("fails with 'service-unavailable', which the gateway may retry", async () => {
        const nowhere = make({ connectionString: 'postgres://postgres@127.0.0.1:1/none' });
        const failure = await expectBackhaulError(() => nowhere.query({ sql: 'SELECT 1', params: [] }));
        expect(failure.code).toBe('service-unavailable');
        await nowhere.close();
      });
    });
  });
}
