import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createBackhaulClient, type QueryEvent } from '@backhaul/client';
import { createChecksummer } from '@backhaul/core';
import Database from 'better-sqlite3';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { demoCallerToken, loadConfig } from './config.js';
import { ensureDemoDatabase } from './demo-data.js';

/**
 * `npm run demo`: starts the reference server and gateway as two processes on embedded defaults,
 * then, as a caller, runs a small query whose rows arrive live and a large one that comes back
 * as a Parquet file behind a URL, which it downloads and verifies.
 */
const dataDir = process.env.BACKHAUL_DEMO_DIR ?? '.backhaul-demo';
const demoRows = Number(process.env.BACKHAUL_DEMO_ROWS ?? 2_000_000);
const here = dirname(fileURLToPath(import.meta.url));
const smallQuery =
  'SELECT id, customer_email, country, status, amount, created_at FROM orders WHERE id <= 5000 ORDER BY id';
// Half the table: a Parquet file of about 120 MB, past the 100 MB the design is measured on.
const largeQuery = 'SELECT * FROM orders WHERE id <= 1000000';
const largeQueryCount = 'SELECT count(*) AS n FROM orders WHERE id <= 1000000';

const say = (line = '') => process.stdout.write(`${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${(bytes / 1_000_000).toFixed(1)} MB`;
const count = (n: number) => n.toLocaleString('en-US');

async function main() {
  const config = loadConfig({ ...process.env, BACKHAUL_PORT: process.env.BACKHAUL_PORT ?? '0' }, dataDir);
  say('Backhaul demo: caller → server → SSE → gateway → SQLite → rows and a Parquet file back');
  say();

  // The demo checks every answer against SQLite itself, so its gateway always reads SQLite.
  const sqlitePath = config.gateway.source.kind === 'sqlite' ? config.gateway.source.path : undefined;
  if (!sqlitePath) throw new Error('The demo reads SQLite: unset BACKHAUL_SOURCE or set it to sqlite');
  const data = ensureDemoDatabase(sqlitePath, demoRows);
  say(
    `  data     ${data.path}: ${count(data.rows)} orders ${data.generatedMs ? `(generated in ${seconds(data.generatedMs)})` : '(cached)'}`,
  );

  const children: ChildProcess[] = [];
  const stopAll = () => {
    for (const child of children) child.kill('SIGTERM');
  };
  process.once('exit', stopAll);
  try {
    const env = {
      ...process.env,
      BACKHAUL_PORT: '0',
      ...(config.server.storage.kind === 'fs' ? { BACKHAUL_STORAGE_ROOT: config.server.storage.root } : {}),
      BACKHAUL_SQLITE_PATH: sqlitePath,
      BACKHAUL_DOWNLOAD_SECRET: config.server.downloadSecret,
    };
    const serverUrl = String((await startProcess('server.js', env, children)).url);
    const storage = config.server.storage;
    say(
      `  server   ${serverUrl} (${config.server.store.kind} store, ${storage.kind === 'fs' ? `fs storage in ${storage.root}` : `s3 storage, bucket ${storage.bucket}`})`,
    );
    await startProcess('gateway.js', { ...env, BACKHAUL_SERVER_URL: serverUrl }, children);
    const client = createBackhaulClient({ url: serverUrl, token: demoCallerToken });
    const gateways = await client.gateways();
    say(`  gateway  ${gateways.map((g) => `${g.id} ${g.connected ? 'connected' : 'offline'}`).join(', ')}`);
    const gatewayId = gateways[0]?.id ?? 'gw-demo';

    await rowsStage(client, gatewayId, data.path);
    await fileStage(client, gatewayId, data.path, config.gateway.codec);
  } finally {
    stopAll();
  }
}

async function rowsStage(client: ReturnType<typeof createBackhaulClient>, gatewayId: string, dbPath: string) {
  say();
  say(`1. Rows, live: ${smallQuery}`);
  const started = performance.now();
  const submitted = await client.submit({ gatewayId, sql: smallQuery, mode: 'rows' });
  let received = 0;
  const final = await client.waitFor(submitted.id, {
    onEvent: (event) => {
      if (event.type !== 'rows') return;
      received += event.rows.length;
      const first = event.rows[0] ?? [];
      say(
        `   +${String(Math.round(performance.now() - started)).padStart(5)} ms  batch ${event.seq}: ${count(event.rows.length)} rows, first ${JSON.stringify(first)}`,
      );
    },
  });
  const { rows } = await client.rows(submitted.id);
  const expected = new Database(dbPath, { readonly: true })
    .prepare(smallQuery)
    .raw(true)
    .all() as unknown[][];
  const equal =
    rows.length === expected.length && rows.every((row, i) => String(row[0]) === String(expected[i]?.[0]));
  say(
    `   ${final.state}: ${count(received)} rows streamed in ${Math.round(performance.now() - started)} ms; ids equal to SQLite: ${equal ? 'yes' : 'NO'}`,
  );
  if (!equal || final.state !== 'completed') throw new Error('The rows stage did not return the source rows');
}

async function fileStage(
  client: ReturnType<typeof createBackhaulClient>,
  gatewayId: string,
  dbPath: string,
  codec: string,
) {
  say();
  say(
    `2. File: ${largeQuery} → Parquet (zstd pages), chunks of 512 KiB (codec ${codec}), into storage, behind a URL`,
  );
  const started = performance.now();
  const at = new Map<string, number>();
  const submitted = await client.submit({ gatewayId, sql: largeQuery, mode: 'file' });
  at.set('submitted', performance.now());
  let lastLine = 0;
  const final = await client.waitFor(submitted.id, {
    onEvent: (event: QueryEvent) => {
      const now = performance.now();
      if (event.type === 'state' && !at.has(event.query.state)) at.set(event.query.state, now);
      if (event.type === 'progress' && now - lastLine > 400) {
        lastLine = now;
        const { rows = 0, bytes = 0, stage = '' } = event.progress;
        const elapsed = (now - started) / 1000;
        say(
          `   ${seconds(now - started).padStart(8)}  ${stage.padEnd(9)} ${count(rows).padStart(10)} rows  ${mb(bytes).padStart(9)} uploaded  ${(bytes / 1_000_000 / elapsed).toFixed(0)} MB/s`,
        );
      }
    },
  });
  const ready = performance.now();
  at.set('url ready', ready);
  if (final.state !== 'completed' || final.result?.kind !== 'file') {
    throw new Error(`The file query ended ${final.state}: ${JSON.stringify(final.error ?? final)}`);
  }
  const result = final.result;
  say(
    `   ${final.state}: ${mb(result.size)} Parquet, ${count(result.rowCount)} rows, xxhash64 ${result.checksum}`,
  );

  say();
  say('3. Download through the URL and verify');
  const file = join(dataDir, 'downloads', `${final.id}.parquet`);
  const downloaded = await download(result.url, file);
  const downloadDone = performance.now();
  const metadata = await parquetMetadataAsync(await asyncBufferFromFile(file));
  const sourceRows = (
    new Database(dbPath, { readonly: true }).prepare(largeQueryCount).get() as {
      n: number;
    }
  ).n;
  const verified = performance.now();
  const checksumOk = downloaded.checksum === result.checksum && downloaded.size === result.size;
  const rowsOk = Number(metadata.num_rows) === sourceRows;
  say(
    `   ${file}: ${mb(downloaded.size)}, xxhash64 ${downloaded.checksum} ${checksumOk ? 'matches' : 'DIFFERS'}`,
  );
  say(
    `   Parquet reader (hyparquet): ${count(Number(metadata.num_rows))} rows in ${metadata.row_groups.length} row groups; SQLite count(*): ${count(sourceRows)} ${rowsOk ? 'equal' : 'DIFFERENT'}`,
  );

  say();
  say('Stage timings (large query):');
  printStages(started, at, [
    ['persisted and queued', 'submitted'],
    ['sent to the gateway', 'dispatched'],
    ['delivery-acked', 'acknowledged'],
    ['query running, first progress', 'running'],
    ['file complete, checksum verified, URL ready', 'url ready'],
  ]);
  say(`   ${'downloaded through the URL'.padEnd(46)} ${seconds(downloadDone - ready).padStart(8)}`);
  say(
    `   ${'verified (xxhash64 + Parquet row count)'.padEnd(46)} ${seconds(verified - downloadDone).padStart(8)}`,
  );
  say(`   ${'total'.padEnd(46)} ${seconds(verified - started).padStart(8)}`);
  say();
  say(`URL (valid until ${result.expiresAt}):`);
  say(`   ${result.url}`);
  if (!checksumOk || !rowsOk) throw new Error('Verification failed');
}

function printStages(started: number, at: Map<string, number>, stages: [string, string][]) {
  let previous = started;
  for (const [label, key] of stages) {
    const time = at.get(key);
    if (time === undefined) continue;
    say(`   ${label.padEnd(46)} ${seconds(time - previous).padStart(8)}   (at ${seconds(time - started)})`);
    previous = time;
  }
}

async function download(url: string, file: string): Promise<{ size: number; checksum: string }> {
  mkdirSync(dirname(file), { recursive: true });
  const response = await fetch(url);
  if (!response.ok || !response.body) throw new Error(`Download failed: HTTP ${response.status}`);
  const hasher = (await createChecksummer()).stream();
  let size = 0;
  const tap = new Transform({
    transform(piece: Buffer, _encoding, done) {
      hasher.update(piece);
      size += piece.length;
      done(null, piece);
    },
  });
  await pipeline(
    Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
    tap,
    createWriteStream(file),
  );
  return { size, checksum: hasher.digest() };
}

/** Starts a reference process and waits for its one JSON ready line on stdout. */
async function startProcess(
  script: string,
  env: NodeJS.ProcessEnv,
  children: ChildProcess[],
): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [join(here, script)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const logs = createWriteStream(join(dataDir, `${script.replace('.js', '')}.log`));
  child.stderr?.pipe(logs);
  const lines = createInterface({ input: child.stdout! });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`${script} exited with code ${code} before it was ready; see ${dataDir}/${script}.log`);
  });
  const ready = (async () => {
    for await (const line of lines) {
      if (line.startsWith('{"ready"')) return JSON.parse(line) as Record<string, unknown>;
    }
    throw new Error(`${script} closed its output before it was ready`);
  })();
  return Promise.race([ready, exited]);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
