import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { gatewayId, type Harness, startHarness } from '../support/harness.js';

const sql =
  'SELECT id, customer_id, customer_email, country, status, quantity, discount, note FROM orders WHERE id <= 3000 ORDER BY id';

describe('a query travels caller → server → SSE → gateway → SQLite and back as rows (protocol §3, §5.3)', () => {
  let dir: string;
  let dbPath: string;
  let harness: Harness;
  let source: unknown[][];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-rows-'));
    dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), 10_000).path;
    const db = new Database(dbPath, { readonly: true });
    source = db.prepare(sql).raw(true).all() as unknown[][];
    db.close();
    harness = await startHarness({ sqlitePath: dbPath });
    await harness.startGateway();
  });

  afterAll(async () => {
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns every row equal to the source, in order', async () => {
    const submitted = await harness.client.submit({ gatewayId, sql, mode: 'rows' });
    const final = await harness.client.waitFor(submitted.id);
    expect(final.state).toBe('completed');
    expect(final.result).toMatchObject({ kind: 'rows', rowCount: 3000 });

    const result = await harness.client.rows(submitted.id);
    expect(result.columns.map((c) => c.name)).toEqual([
      'id',
      'customer_id',
      'customer_email',
      'country',
      'status',
      'quantity',
      'discount',
      'note',
    ]);
    expect(result.rows).toEqual(source);
  });

  it('streams row batches to a caller following live, before the result event', async () => {
    const submitted = await harness.client.submit({ gatewayId, sql, mode: 'rows' });
    const kinds: string[] = [];
    const streamed: unknown[][] = [];
    for await (const event of harness.client.follow(submitted.id)) {
      kinds.push(event.type);
      if (event.type === 'rows') streamed.push(...event.rows);
    }
    expect(kinds.at(-1)).toBe('result');
    expect(kinds.filter((k) => k === 'rows').length).toBeGreaterThan(1);
    expect(kinds.indexOf('rows')).toBeLessThan(kinds.indexOf('result'));
    expect(streamed).toEqual(source);
  });

  it('lists the gateway as connected', async () => {
    const gateways = await harness.client.gateways();
    expect(gateways).toEqual([expect.objectContaining({ id: gatewayId, connected: true })]);
  });
});
