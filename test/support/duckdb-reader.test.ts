import { ParquetWriter } from '@backhaul/parquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DuckDbReader, openDuckDb } from './duckdb-reader.js';

describe('the DuckDB reference reader', () => {
  let duck: DuckDbReader;
  beforeAll(async () => {
    duck = await openDuckDb();
  });
  afterAll(() => duck.close());

  it('reads rows, types and the footer of a file written by our writer', async () => {
    const writer = new ParquetWriter(
      [
        { name: 'id', type: 'int64', nullable: false },
        { name: 'name', type: 'string' },
        { name: 'amount', type: 'decimal', precision: 12, scale: 2 },
      ],
      { rowGroupSize: 2, createdBy: 'reader-test' },
    );
    const parts = [
      ...writer.write([
        [1n, 'Ada', '12.50'],
        [2n, null, '-0.01'],
        [3n, 'Grace', null],
      ]),
      ...writer.finish(),
    ];
    const file = await duck.file(parts);

    expect(await duck.rows(file, { select: 'id, name, amount::VARCHAR AS amount', orderBy: 'id' })).toEqual([
      { id: 1n, name: 'Ada', amount: '12.50' },
      { id: 2n, name: null, amount: '-0.01' },
      { id: 3n, name: 'Grace', amount: null },
    ]);
    expect(await duck.describe(file)).toEqual([
      { name: 'id', type: 'BIGINT', nullable: true },
      { name: 'name', type: 'VARCHAR', nullable: true },
      { name: 'amount', type: 'DECIMAL(12,2)', nullable: true },
    ]);
    const chunks = await duck.metadata(file);
    expect(chunks.map((chunk) => [chunk.rowGroup, chunk.path, chunk.numValues])).toEqual([
      [0, 'id', 2],
      [0, 'name', 2],
      [0, 'amount', 2],
      [1, 'id', 1],
      [1, 'name', 1],
      [1, 'amount', 1],
    ]);
    expect(chunks.find((chunk) => chunk.rowGroup === 0 && chunk.path === 'name')?.statsNullCount).toBe(1);
    const meta = await duck.fileMetadata(file);
    expect(meta).toMatchObject({ createdBy: 'reader-test', numRows: 3, numRowGroups: 2 });
  });

  it('tells which row groups a WHERE reads, from a file whose statistics allow skipping', async () => {
    // DuckDB's own writer keeps min/max per row group (of 2048 rows: its vector size): the proof that rowGroupsRead sees skipping.
    const file = duck.tempPath();
    await duck.query(
      `COPY (SELECT i AS id FROM range(6144) t(i)) TO '${file}' (FORMAT parquet, ROW_GROUP_SIZE 2048)`,
    );
    const chunks = await duck.metadata(file);
    expect(chunks.map((chunk) => [chunk.statsMinValue, chunk.statsMaxValue])).toEqual([
      ['0', '2047'],
      ['2048', '4095'],
      ['4096', '6143'],
    ]);
    expect(await duck.rowGroupsRead(file, 'id >= 5000')).toEqual([2]);
    expect(await duck.rowGroupsRead(file, 'id < 3000')).toEqual([0, 1]);
    expect(await duck.rowGroupsRead(file, 'true')).toEqual([0, 1, 2]);
  });
});
