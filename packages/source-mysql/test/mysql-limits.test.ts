import type { DataSource } from '@backhaul/core';
import { batchSizesOf, expectBackhaulError } from '@backhaul/core/testing';
import { createMysqlDataSource } from '@backhaul/source-mysql';
import mysql from 'mysql2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, mysqlService, mysqlUrl } from './mysql-service.js';

/** Statements of this test's sessions still running on the server (a leaked query shows up here). */
async function runningSleeps(): Promise<number> {
  const rows = await adminQuery<{ n: number }[]>(
    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND (INFO LIKE 'SELECT SLEEP(8)%' OR INFO LIKE '%backhaul_slow_marker%')",
  );
  return Number(rows[0]!.n);
}

mysqlService.describe('mysql source: limits', () => {
  let source: DataSource;
  beforeAll(() => {
    // A pool of 1: any leaked connection makes the next test hang instead of passing.
    source = createMysqlDataSource({ uri: mysqlUrl, poolSize: 1, statementTimeoutMs: 10_000 });
  });
  afterAll(async () => {
    await source?.close();
  });

  describe('timeoutMs bounds the statement on the server', () => {
    it("SELECT SLEEP(5) with timeoutMs 200 fails with 'timeout' well before 5 s", async () => {
      const started = Date.now();
      const failure = await expectBackhaulError(async () =>
        batchSizesOf(await source.query({ sql: 'SELECT SLEEP(5)', params: [], timeoutMs: 200 }), 10),
      );
      expect(failure.code).toBe('timeout');
      expect(failure.retryable).toBe(true);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('statementTimeoutMs (max_statement_time) applies when the request has none', async () => {
      const short = createMysqlDataSource({ uri: mysqlUrl, poolSize: 1, statementTimeoutMs: 200 });
      const started = Date.now();
      const failure = await expectBackhaulError(async () =>
        batchSizesOf(await short.query({ sql: 'SELECT SLEEP(5)', params: [] }), 10),
      );
      expect(failure.code).toBe('timeout');
      expect(failure.message).toMatch(/max_statement_time|maximum statement execution time/);
      expect(Date.now() - started).toBeLessThan(2000);
      await short.close();
    });
  });

  describe('maxRows is a hard cap', () => {
    it('the request cap: no more rows than maxRows arrive, whatever the batch size', async () => {
      for (const batchSize of [1, 7, 1000]) {
        const cursor = await source.query({
          sql: 'SELECT seq FROM seq_1_to_100000',
          params: [],
          maxRows: 250,
        });
        const sizes = await batchSizesOf(cursor, batchSize);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(250);
      }
    });

    it('a LIMIT of its own above the cap is cut at the cap too', async () => {
      const cursor = await source.query({
        sql: 'SELECT seq FROM seq_1_to_100000 LIMIT 5000',
        params: [],
        maxRows: 30,
      });
      expect((await batchSizesOf(cursor, 100)).reduce((a, b) => a + b, 0)).toBe(30);
    });

    it("the source's maxRows wins over a larger request", async () => {
      const capped = createMysqlDataSource({ uri: mysqlUrl, poolSize: 1, maxRows: 5 });
      const cursor = await capped.query({ sql: 'SELECT seq FROM seq_1_to_1000', params: [], maxRows: 100 });
      expect(await batchSizesOf(cursor, 100)).toEqual([5]);
      await capped.close();
    });

    it('the cap does not stay on the session: the next query gets every row', async () => {
      await batchSizesOf(
        await source.query({ sql: 'SELECT seq FROM seq_1_to_1000', params: [], maxRows: 3 }),
        10,
      );
      const sizes = await batchSizesOf(
        await source.query({ sql: 'SELECT seq FROM seq_1_to_1000', params: [] }),
        1000,
      );
      expect(sizes).toEqual([1000]);
    });
  });

  describe('an AbortSignal stops the query', () => {
    it('an abort during a slow statement kills it on the server at once', async () => {
      const controller = new AbortController();
      const started = Date.now();
      setTimeout(() => controller.abort(new Error('caller cancelled')), 300);
      await expect(
        (async () =>
          batchSizesOf(
            await source.query({ sql: 'SELECT SLEEP(8)', params: [], signal: controller.signal }),
            10,
          ))(),
      ).rejects.toThrow('caller cancelled');
      expect(Date.now() - started).toBeLessThan(3000);
      expect(await runningSleeps()).toBe(0);
      expect(await batchSizesOf(await source.query({ sql: 'SELECT 1', params: [] }), 10)).toEqual([1]);
    });

    it('an already aborted signal rejects before anything runs', async () => {
      const controller = new AbortController();
      controller.abort(new Error('too late'));
      await expect(source.query({ sql: 'SELECT 1', params: [], signal: controller.signal })).rejects.toThrow(
        'too late',
      );
    });
  });

  describe('close() ends the query and returns the connection', () => {
    it('close() in the middle of a large result, then more queries on a pool of 1', async () => {
      for (let round = 0; round < 5; round++) {
        const cursor = await source.query({
          sql: "SELECT seq, 'backhaul_slow_marker' FROM seq_1_to_2000000",
          params: [],
        });
        const iterator = cursor.batches(10)[Symbol.asyncIterator]();
        expect((await iterator.next()).value).toHaveLength(10);
        await cursor.close();
      }
      expect(await batchSizesOf(await source.query({ sql: 'SELECT 1', params: [] }), 10)).toEqual([1]);
      expect(await runningSleeps()).toBe(0);
    });

    it('close() of the data source closes cursors still open', async () => {
      const own = createMysqlDataSource({ uri: mysqlUrl, poolSize: 1 });
      const cursor = await own.query({ sql: 'SELECT seq FROM seq_1_to_1000000', params: [] });
      await own.close();
      await expect(own.query({ sql: 'SELECT 1', params: [] })).rejects.toMatchObject({
        code: 'service-unavailable',
      });
      await cursor.close();
    });
  });

  describe('a pool of your own', () => {
    it('works, and gets its session settings back after each query', async () => {
      const pool = mysql.createPool({ uri: mysqlUrl, connectionLimit: 1 });
      const own = createMysqlDataSource({ pool });
      expect(
        await batchSizesOf(
          await own.query({ sql: 'SELECT seq FROM seq_1_to_100', params: [], maxRows: 7 }),
          100,
        ),
      ).toEqual([7]);
      await own.close();
      const settings = await new Promise<Record<string, unknown>>((resolve, reject) =>
        pool.query(
          'SELECT CAST(@@sql_select_limit AS CHAR) AS lim, @@tx_read_only AS ro, @@time_zone AS tz',
          (error, rows) => (error ? reject(error) : resolve((rows as Record<string, unknown>[])[0]!)),
        ),
      );
      expect(settings.ro).toBe(0);
      expect(String(settings.lim)).toBe('18446744073709551615');
      await new Promise<void>((resolve) => pool.end(() => resolve()));
    });
  });

  describe('parameters', () => {
    it('escapes strings, numbers, booleans and NULL, never running them as SQL', async () => {
      const cursor = await source.query({
        sql: 'SELECT ?, ?, ?, ?, ? IS NULL',
        params: ["'; DROP TABLE x; --", 42, 1.25, true, null],
      });
      const rows: unknown[][] = [];
      for await (const batch of cursor.batches(10)) rows.push(...batch);
      expect(rows[0]![0]).toBe("'; DROP TABLE x; --");
      expect(rows[0]![1]).toBe(42);
      expect(Number(rows[0]![2])).toBe(1.25);
    });
  });

  describe('an unreachable database', () => {
    it("fails with 'service-unavailable', which the gateway may retry", async () => {
      const nowhere = createMysqlDataSource({ uri: 'mysql://root@127.0.0.1:1/none' });
      const failure = await expectBackhaulError(() => nowhere.query({ sql: 'SELECT 1', params: [] }));
      expect(failure.code).toBe('service-unavailable');
      await nowhere.close();
    });
  });
});
