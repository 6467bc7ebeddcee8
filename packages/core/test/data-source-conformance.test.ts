import { BackhaulError, type DataSource, type QueryRequest, type RowValue } from '@backhaul/core';
import { describe, expect, it } from 'vitest';
import { dataSourceFixture, runDataSourceConformance } from '../src/testing/data-source-conformance.js';

/**
 * The smallest source that follows the rules: it serves the fixture from memory. Running the
 * suite against it proves the suite can be passed, so a failing adapter is the adapter's fault.
 */
const slowSql = 'SELECT pause FROM forever';

function createFixtureSource(): DataSource {
  const fixtureSql = 'SELECT id, name, amount, active, note FROM fixture ORDER BY id';
  const paramSql = 'SELECT id, name, amount, active, note FROM fixture WHERE id = ?';
  let open = 0;
  /** A statement that never ends by itself: it stops only when the signal aborts. */
  const slowCursor = (request: QueryRequest) => ({
    columns: [{ name: 'pause', type: 'int32' as const, nullable: true }],
    async *batches(): AsyncGenerator<RowValue[][]> {
      for (;;) {
        request.signal?.throwIfAborted();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async close() {},
  });
  return {
    specificationVersion: 'v1',
    name: 'fixture',
    async query(request: QueryRequest) {
      // One "connection": a cursor that was not closed blocks the next query, as a pool of one would.
      if (open > 0) throw new BackhaulError('service-unavailable', 'no free connection');
      let ids: number[];
      if (request.sql === slowSql) return slowCursor(request);
      if (request.sql === fixtureSql)
        ids = Array.from({ length: dataSourceFixture.rowCount }, (_, i) => i + 1);
      else if (request.sql === paramSql) ids = [Number(request.params[0])];
      else throw new BackhaulError('query-failed', `syntax error in: ${request.sql}`);
      const limit = Math.min(ids.length, request.maxRows ?? Number.POSITIVE_INFINITY);
      open++;
      let closed = false;
      return {
        columns: [
          { name: 'id', type: 'int64', nullable: false },
          { name: 'name', type: 'string', nullable: false },
          { name: 'amount', type: 'float64', nullable: false },
          { name: 'active', type: 'boolean', nullable: false },
          { name: 'note', type: 'string', nullable: true },
        ],
        async *batches(batchSize: number) {
          for (let start = 0; start < limit && !closed; start += batchSize) {
            request.signal?.throwIfAborted();
            // int64 as bigint and amount as a decimal string, as real drivers return them.
            yield ids.slice(start, Math.min(start + batchSize, limit)).map((id): RowValue[] => {
              const [, name, amount, active, note] = dataSourceFixture.expectedRow(id);
              return [BigInt(id), name, amount.toFixed(2), active, note];
            });
          }
        },
        async close() {
          if (!closed) open--;
          closed = true;
        },
      };
    },
    async close() {},
  };
}

runDataSourceConformance('in-memory fixture', async () => ({
  source: createFixtureSource(),
  fixtureSql: 'SELECT id, name, amount, active, note FROM fixture ORDER BY id',
  paramSql: 'SELECT id, name, amount, active, note FROM fixture WHERE id = ?',
  slowSql,
}));

describe('dataSourceFixture states the rows adapters create', () => {
  it('id, name-<id>, id * 1.5, even ids active, note NULL every tenth id', () => {
    expect(dataSourceFixture.expectedRow(1)).toEqual([1, 'name-1', 1.5, false, 'note-1']);
    expect(dataSourceFixture.expectedRow(42)).toEqual([42, 'name-42', 63, true, 'note-42']);
    expect(dataSourceFixture.expectedRow(1000)).toEqual([1000, 'name-1000', 1500, true, null]);
  });
});
