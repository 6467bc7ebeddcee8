import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChecksummer } from '@backhaul/core';
import { encodeCursorAsParquet } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { parquetMetadata } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { gatewayId, type Harness, startHarness } from '../support/harness.js';

// Enough orders for a Parquet file past 100 MB (about 90 bytes a row: uncompressed pages,
// dictionary-encoded where it pays).
const rows = 1_200_000;

describe('a Parquet file of 100 MB or more moves end to end and is handed out behind a URL (protocol §6)', () => {
  let dir: string;
  let dbPath: string;
  let harness: Harness;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-file-'));
    dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), rows).path;
    harness = await startHarness({ sqlitePath: dbPath });
    // Uncompressed pages keep the file past 100 MB: moving that many bytes is what is tested here.
    await harness.startGateway({ parquetCompression: 'none' });
  }, 120_000);

  afterAll(async () => {
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('downloads byte-identical to what the gateway produced, with the source row count', async () => {
    const submitted = await harness.client.submit({ gatewayId, sql: 'SELECT * FROM orders', mode: 'file' });
    const final = await harness.client.waitFor(submitted.id);
    expect(final.state).toBe('completed');
    const result = final.result;
    if (result?.kind !== 'file') throw new Error(`expected a file result, got ${JSON.stringify(final)}`);
    expect(result.size).toBeGreaterThanOrEqual(100_000_000);
    expect(result.rowCount).toBe(rows);

    const response = await fetch(result.url);
    expect(response.status).toBe(200);
    const downloaded = new Uint8Array(await response.arrayBuffer());
    expect(downloaded.length).toBe(result.size);
    const checksummer = await createChecksummer();
    expect(checksummer.digest(downloaded)).toBe(result.checksum);

    // The encoder is deterministic: encoding the same query again gives the gateway's bytes.
    const source = createSqliteDataSource({ filename: dbPath });
    const cursor = await source.query({ sql: 'SELECT * FROM orders', params: [], columnar: true });
    const pieces: Uint8Array[] = [];
    for await (const piece of encodeCursorAsParquet(cursor, { compression: 'none' })) pieces.push(piece);
    await source.close();
    expect(Buffer.compare(Buffer.concat(pieces), downloaded)).toBe(0);

    const metadata = parquetMetadata(
      downloaded.buffer.slice(downloaded.byteOffset, downloaded.byteOffset + downloaded.byteLength),
    );
    expect(Number(metadata.num_rows)).toBe(rows);
  }, 300_000);
});
