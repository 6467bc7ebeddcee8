import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackhaulCli } from '../support/admin-cli-process.js';
import { callerToken, gatewayId, type Harness, startHarness } from '../support/harness.js';

/*
 * The `backhaul` program (packages/client/src/cli.ts) as a process of its own, against a real
 * server and a real gateway on SQLite: a rows query printed as a table, a file query written to
 * disk with its progress on stderr, the gateway list, and the live events of a query.
 */

describe('backhaul, the caller CLI, as a process', () => {
  let dir: string;
  let harness: Harness;
  const cli = (args: string[]) =>
    runBackhaulCli(args, { BACKHAUL_SERVER_URL: harness.url, BACKHAUL_TOKEN: callerToken });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-cli-'));
    const dbPath = join(dir, 'cities.sqlite');
    const db = new Database(dbPath);
    db.exec('CREATE TABLE cities (id INTEGER NOT NULL, name TEXT NOT NULL, note TEXT)');
    const insert = db.prepare('INSERT INTO cities VALUES (?, ?, ?)');
    for (let id = 1; id <= 2000; id++) insert.run(id, `city-${id}`, id === 2 ? 'two\nlines' : null);
    db.close();
    // A low row limit and small batches: an auto query of every city sends some batches live,
    // then switches to a file (docs/protocol.md §3.9); the other queries stay far from it.
    harness = await startHarness({ sqlitePath: dbPath, server: { rowsByteLimit: 10_000 } });
    await harness.startGateway({ rowBatchSize: 100 });
  });

  afterAll(async () => {
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('query prints rows as an aligned table, numbers right-aligned, NULL spelled out, one line per row', async () => {
    const run = await cli([
      'query',
      '--gateway',
      gatewayId,
      '--mode',
      'rows',
      'SELECT id, name, note FROM cities WHERE id <= 10 ORDER BY id',
    ]);
    expect(run.stderr).toMatch(/^Query [0-9a-f-]{36} on gw-test\n/);
    expect(run.stderr).toContain('10 rows');
    expect(run.status).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(12);
    expect(lines[0]).toBe('id  name     note');
    expect(lines[1]).toBe('--  -------  ----------');
    expect(lines[2]).toBe(' 1  city-1   NULL');
    expect(lines[3]).toBe(' 2  city-2   two\\nlines');
    expect(lines[11]).toBe('10  city-10  NULL');

    const asJson = await cli([
      'query',
      '-g',
      gatewayId,
      '--mode',
      'rows',
      '--json',
      'SELECT count(*) AS n FROM cities',
    ]);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ columns: [{ name: 'n' }], rows: [[2000]] });
  });

  it('query --out writes the Parquet file, byte for byte the one the server announced, with progress on stderr', async () => {
    const out = join(dir, 'cities.parquet');
    const run = await cli([
      'query',
      '--gateway',
      gatewayId,
      '--mode',
      'file',
      '--out',
      out,
      'SELECT id, name FROM cities ORDER BY id',
    ]);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`${out}\n`);
    const bytes = readFileSync(out);
    // The last progress line: everything written, at 100 %, with a rate and an ETA.
    const progress = run.stderr.trimEnd().split('\n').at(-1) ?? '';
    expect(progress).toMatch(
      /^\d+(\.\d)? (B|KiB) \/ \d+(\.\d)? (B|KiB) {2}100% {2}\[#{20}\] {2}\S+ \S+\/s {2}ETA 0 s$/,
    );
    const rows = await parquetReadObjects({
      file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
      // The gateway writes zstd pages by default.
      compressors,
    });
    expect(rows).toHaveLength(2000);
    expect(rows[1999]).toEqual({ id: 2000n, name: 'city-2000' });

    // Without --out the link is the answer; --json gives the whole view, size and checksum included.
    const link = await cli([
      'query',
      '--gateway',
      gatewayId,
      '--mode',
      'file',
      '--json',
      'SELECT id, name FROM cities ORDER BY id',
    ]);
    const view = JSON.parse(link.stdout) as { result: { url: string; size: number } };
    const fetched = Buffer.from(await (await fetch(view.result.url)).arrayBuffer());
    expect(fetched.length).toBe(view.result.size);
    expect(createHash('sha256').update(fetched).digest('hex')).toBe(
      createHash('sha256').update(bytes).digest('hex'),
    );
  });

  it('query in auto prints the live rows as a table, then writes the file of every row, the live ones first', async () => {
    const out = join(dir, 'auto.parquet');
    const run = await cli([
      'query',
      '--gateway',
      gatewayId,
      '--out',
      out,
      'SELECT id, name FROM cities ORDER BY id',
    ]);
    expect(run.status).toBe(0);
    const switched = /(\d+) rows so far; the result passed the row limit/.exec(run.stderr);
    const liveRows = Number(switched?.[1]);
    expect(liveRows).toBeGreaterThan(0);
    expect(liveRows).toBeLessThan(2000);
    const lines = run.stdout.trimEnd().split('\n');
    // The header, the rule, one line per live row, then the file's path.
    expect(lines).toHaveLength(liveRows + 3);
    expect(lines[0]).toMatch(/^ *id {2}name$/);
    expect(lines[2]).toMatch(/^ *1 {2}city-1$/);
    expect(lines[liveRows + 1]).toMatch(new RegExp(`^ *${liveRows}  city-${liveRows}$`));
    expect(lines.at(-1)).toBe(out);
    const bytes = readFileSync(out);
    const rows = await parquetReadObjects({
      file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
      compressors,
    });
    expect(rows.map((row) => Number(row.id))).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(rows[liveRows - 1]).toEqual({ id: BigInt(liveRows), name: `city-${liveRows}` });

    // Without --out, the live rows and then the link; stderr counts the rows already printed.
    const link = await cli(['query', '--gateway', gatewayId, 'SELECT id, name FROM cities ORDER BY id']);
    expect(link.status).toBe(0);
    expect(link.stdout.trimEnd().split('\n').at(-1)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/downloads\//);
    expect(link.stderr).toContain(`2000 rows in a`);
    expect(link.stderr).toContain(`the first ${liveRows} printed above`);
  });

  it('gateways lists the connected gateway; tail prints a query’s events until it ends', async () => {
    const gateways = await cli(['gateways']);
    expect(gateways.status).toBe(0);
    expect(gateways.stdout.split('\n')[2]).toMatch(/^gw-test +yes +\d{4}-/);

    const submitted = await harness.client.submit({ gatewayId, sql: 'SELECT id FROM cities', mode: 'rows' });
    const tail = await cli(['tail', submitted.id]);
    expect(tail.status).toBe(0);
    const kinds = tail.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split(/ +/)[1]);
    expect(kinds[0]).toBe('state');
    expect(kinds.at(-1)).toBe('result');
    expect(tail.stdout).toMatch(/result +completed, 2000 rows\n$/);
    const rowLines = tail.stdout.match(/rows +batch \d+: (\d+) rows/g) ?? [];
    const total = rowLines.reduce((sum, line) => sum + Number(/: (\d+) rows/.exec(line)?.[1]), 0);
    expect(total).toBe(2000);
  });

  it('cancel stops a running query; a finished one is refused with exit 1', async () => {
    const endless = 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n';
    const submitted = await harness.client.submit({ gatewayId, sql: endless, mode: 'file' });
    for await (const event of harness.client.follow(submitted.id)) {
      if (event.type === 'state' && event.query.state === 'running') break;
    }
    const cancelled = await cli(['cancel', submitted.id]);
    expect(cancelled.status).toBe(0);
    expect(cancelled.stdout).toBe(`${submitted.id}  cancelled\n`);
    expect((await harness.client.get(submitted.id)).state).toBe('cancelled');

    const finished = await harness.client.submit({ gatewayId, sql: 'SELECT 1', mode: 'rows' });
    expect((await harness.client.waitFor(finished.id)).state).toBe('completed');
    const refused = await cli(['cancel', finished.id]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/completed/);
  });

  it('wrong usage exits 2 with the usage; a refusal exits 1 with the problem', async () => {
    const usage = await cli(['query', 'SELECT 1']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('query needs --gateway G');
    const unknown = await cli(['frobnicate']);
    expect(unknown.status).toBe(2);
    const refused = await cli(['query', '--gateway', 'gw-nowhere', 'SELECT 1']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("No gateway 'gw-nowhere' is configured");
    const missing = await cli(['tail', 'no-such-query']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('No query no-such-query');
  });
});
