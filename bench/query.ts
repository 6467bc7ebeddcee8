// npm run bench:query: a PostgreSQL table → rows → Parquet → chunks → storage → verified URL, with
// the real gateway (createGateway + the PostgreSQL source), encoding overlapped with the upload.
// Two passes without the network first say where the time goes: reading rows, and rows → Parquet.

import { constants } from 'node:fs';
import { access, mkdir, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLz4Codec } from '@backhaul/codec-lz4';
import { createZstdCodec } from '@backhaul/codec-zstd';
import { createChecksummer } from '@backhaul/core';
import {
  type CodecChoice,
  createGateway,
  DEFAULT_CHUNKS_IN_FLIGHT,
  encodeCursorAsParquet,
  FILE_BATCH_SIZE,
  fileBatches,
} from '@backhaul/gateway-node';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import pg from 'pg';
import { benchServer } from './lib/bench-api.js';
import { DEFAULT_ROWS } from './lib/dataset.js';
import { oneOf, parseOptions, toFlags } from './lib/options.js';
import { machine } from './lib/proc.js';
import { codecChoiceFields, progress, round, runMain } from './lib/report.js';
import { type ServerSide, startServerSide } from './lib/setup.js';
import { spawnTs } from './lib/spawn.js';
import { now } from './lib/timing.js';
import { gatewayId, gatewayToken } from './lib/tokens.js';
import { requireWan, WAN } from './lib/wan.js';

const spec = {
  'pg-url': {
    default: 'postgres://postgres@127.0.0.1:5432/test',
    help: 'PostgreSQL to read (the table is created there if missing)',
  },
  table: { default: 'bench_orders', help: 'table name' },
  rows: {
    default: DEFAULT_ROWS,
    help: 'rows in the table (2.2 M ≈ 33 MB of Parquet with zstd pages, 87 MB without)',
  },
  storage: { default: 'fs', help: 'fs | s3 (s3rver started by the bench)' },
  codec: {
    // auto, as the reference gateway: the pages are zstd already (docs/benchmarks.md).
    default: 'auto',
    help: 'chunk codec: auto | zstd | lz4 | none (auto: zstd kept where a sampled chunk shrinks by 10 %)',
  },
  'server-url': { default: undefined, help: 'run the gateway side only, against this server' },
  wan: { default: false, help: 'server side in bh_api, gateway (and its database connection) in bh_gw' },
  'chunks-in-flight': { default: DEFAULT_CHUNKS_IN_FLIGHT, help: 'chunk PUTs in flight' },
  passes: { default: true, help: 'also time the read-only and encode-only passes' },
  warmup: {
    default: true,
    help: 'run one smaller query (2 × chunks in flight × 512 KiB of Parquet) through the gateway first, so its connections are open and warm',
  },
} as const;

const options = parseOptions('query', spec);
const storage = oneOf('storage', options.storage, ['fs', 's3'] as const);
const codec = oneOf('codec', options.codec, ['zstd', 'lz4', 'none', 'auto'] as const);
const TABLE_VERSION = 'backhaul-bench-v1';
/**
 * Sizes the warm-up query: 671,089 rows, the bytes of 2 × 32 chunks of uncompressed pages (50 bytes a
 * row); with zstd pages (15 bytes a row) about 10 MB, 20 chunks. Kept so runs compare across versions.
 */
const WARMUP_BYTES_PER_ROW = 50;
let serverSide: ServerSide | undefined;
let forwarder: Server | undefined;
const sql = () => `SELECT * FROM ${options.table} ORDER BY id`;

runMain(
  'query',
  async () => {
    await ensureTable();
    if (options.wan) return runAcrossWan();
    let url = options['server-url'];
    if (!url) {
      serverSide = await startServerSide({ storage, wan: false });
      url = serverSide.server.url;
    }
    return gatewaySide(
      url.replace(/\/+$/, ''),
      options['pg-url'],
      options['server-url'] ? 'url' : 'loopback',
    );
  },
  async () => {
    await serverSide?.stop();
    forwarder?.close();
  },
);

/** The table, deterministic (every value a function of the row number), made once. */
async function ensureTable(): Promise<void> {
  const client = new pg.Client({ connectionString: options['pg-url'] });
  await client.connect();
  try {
    const table = client.escapeIdentifier(options.table);
    const marker = `${TABLE_VERSION} rows=${options.rows}`;
    const found = await client.query(`SELECT obj_description(to_regclass($1), 'pg_class') AS marker`, [
      options.table,
    ]);
    if (found.rows[0]?.marker === marker) return;
    progress(`creating table ${options.table} with ${options.rows} rows (once)`);
    const started = now();
    await client.query(`DROP TABLE IF EXISTS ${table}`);
    await client.query(`
      CREATE TABLE ${table} AS
      SELECT g::bigint AS id,
             (1 + (g * 7919) % 200000)::int AS customer_id,
             (ARRAY['new','paid','shipped','delivered','cancelled','refunded'])[1 + (g * 31) % 6] AS status,
             CASE WHEN g % 20 = 0 THEN NULL ELSE (((g * 104729) % 10000000) / 100.0)::numeric(12,2) END AS amount,
             CASE WHEN g % 10 = 3 THEN NULL ELSE ((g * 2654435761) % 1000003)::float8 / 10000.03 END AS score,
             timestamptz '2024-01-01 00:00:00+00' + g * interval '10 seconds' + ((g * 37) % 10000) * interval '1 millisecond' AS created_at,
             CASE WHEN g % 50 = 7 THEN NULL ELSE (g * 13) % 2 = 0 END AS paid
      FROM generate_series(1::bigint, ${Number(options.rows)}::bigint) AS g`);
    await client.query(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
    await client.query(`ANALYZE ${table}`);
    await client.query(`COMMENT ON TABLE ${table} IS '${marker}'`);
    progress(`table ready in ${((now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await client.end();
  }
}

/**
 * --wan: server in bh_api; this bench as the gateway side in bh_gw. The database stays next to the
 * gateway: bh_gw reaches it through a Unix socket (filesystem, not network). PostgreSQL's own socket
 * when the server has one (`unix_socket_directories`), as a database next to its gateway is reached;
 * else one forwarded to its TCP port by this process, whose copying then costs CPU on the same cores.
 */
async function runAcrossWan(): Promise<Record<string, unknown>> {
  requireWan();
  const socketDir = (await serverSocketDir()) ?? (await forwardedSocketDir());
  const viaSocket = new URL(options['pg-url']);
  viaSocket.searchParams.set('host', socketDir);
  serverSide = await startServerSide({ storage, wan: true });
  const child = spawnTs(
    join('bench', 'query.ts'),
    toFlags({ ...options, wan: false, 'server-url': serverSide.server.url, 'pg-url': viaSocket.toString() }),
    { netns: WAN.gatewayNs, label: WAN.gatewayNs },
  );
  const { code, lastJson } = await child.exited;
  if (code !== 0 || !lastJson) throw new Error(`the gateway side in ${WAN.gatewayNs} failed (exit ${code})`);
  return { ...lastJson, link: 'wan' };
}

/** The directory of the database server's own Unix socket, if it has one this process can open. */
async function serverSocketDir(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: options['pg-url'] });
  await client.connect();
  try {
    const { rows } = await client.query<{ unix_socket_directories: string }>('SHOW unix_socket_directories');
    const port = new URL(options['pg-url']).port || '5432';
    for (const dir of (rows[0]?.unix_socket_directories ?? '').split(',').map((d) => d.trim())) {
      if (!dir.startsWith('/')) continue;
      const ok = await access(join(dir, `.s.PGSQL.${port}`), constants.R_OK | constants.W_OK).then(
        () => true,
        () => false,
      );
      if (ok) return dir;
    }
    return undefined;
  } finally {
    await client.end();
  }
}

async function forwardedSocketDir(): Promise<string> {
  const target = new URL(options['pg-url']);
  const socketDir = join(tmpdir(), `backhaul-bench-pg-${process.pid}`);
  await rm(socketDir, { recursive: true, force: true });
  await mkdir(socketDir, { recursive: true });
  forwarder = createServer((socket) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => forwarder!.listen(join(socketDir, '.s.PGSQL.5432'), resolve));
  return socketDir;
}

async function gatewaySide(url: string, pgUrl: string, link: string): Promise<Record<string, unknown>> {
  const dataSource = createPostgresDataSource({ connectionString: pgUrl });
  const checksummer = await createChecksummer();
  let readS: number | undefined;
  let encodeS: number | undefined;
  let encodedBytes: number | undefined;
  let encodedChecksum: string | undefined;
  try {
    if (options.passes) {
      // Pass 1: reading only, as file mode reads (PostgreSQL → column vectors).
      let started = now();
      let cursor = await dataSource.query({ sql: sql(), params: [], columnar: true });
      let rows = 0;
      for await (const batch of fileBatches(cursor, FILE_BATCH_SIZE)) {
        rows += Array.isArray(batch) ? batch.length : batch.rowCount;
      }
      await cursor.close();
      readS = (now() - started) / 1000;
      progress(`read pass: ${rows} rows in ${readS.toFixed(2)} s (${Math.round(rows / readS)} rows/s)`);
      // Pass 2: reading and encoding Parquet, as file mode does, bytes discarded.
      started = now();
      cursor = await dataSource.query({ sql: sql(), params: [], columnar: true });
      const hash = checksummer.stream();
      encodedBytes = 0;
      for await (const piece of encodeCursorAsParquet(cursor)) {
        hash.update(piece);
        encodedBytes += piece.length;
      }
      encodeS = (now() - started) / 1000;
      encodedChecksum = hash.digest();
      progress(
        `encode pass: ${(encodedBytes / 1e6).toFixed(1)} MB of Parquet in ${encodeS.toFixed(2)} s (${(encodedBytes / 1e6 / encodeS).toFixed(1)} MB/s, reading included)`,
      );
    }

    // The whole path, through the real gateway.
    const server = await benchServer(url);
    const gateway = createGateway({
      serverUrl: url,
      token: gatewayToken(0),
      dataSource,
      codecs: [createZstdCodec(), createLz4Codec()],
      preferredCodec: codec === 'none' ? 'identity' : codec,
      chunksInFlight: options['chunks-in-flight'],
    });
    await gateway.start();
    const stages: Record<string, number> = {};
    let issuedAt = 0;
    let codecChosen: CodecChoice | undefined;
    gateway.on((event) => {
      if (event.type === 'codec-chosen') codecChosen = event;
      const at = round((now() - issuedAt) / 1000);
      if (event.type === 'command') stages.command_received ??= at;
      if (event.type === 'progress' && event.stage === 'uploading') stages.uploading ??= at;
      if (event.type === 'completed') stages.completion_answered = at;
    });
    try {
      if (options.warmup) {
        // As bench:transfer does: the timed run measures warm keep-alive connections, which a
        // running gateway has, not the first file's handshakes and slow start (docs/benchmarks.md).
        const warmupRows = Math.ceil((2 * options['chunks-in-flight'] * 512 * 1024) / WARMUP_BYTES_PER_ROW);
        const warm = await server.submit({
          gatewayId: gatewayId(0),
          sql: `${sql()} LIMIT ${warmupRows}`,
          mode: 'file',
        });
        const warmed = await warm.done();
        if (warmed.view.state !== 'completed')
          throw new Error(`the warm-up query ended ${warmed.view.state}`);
        await server.deleteResult(gatewayId(0), warm.id);
        progress(`warm-up done (${warmupRows} rows through the gateway)`);
        codecChosen = undefined;
        for (const stage of Object.keys(stages)) delete stages[stage];
      }
      issuedAt = now();
      const query = await server.submit({ gatewayId: gatewayId(0), sql: sql(), mode: 'file' });
      const done = await query.done();
      const totalS = Number(done.completedNs - query.issuedNs) / 1e9;
      const result = done.view.result;
      if (done.view.state !== 'completed' || result?.kind !== 'file') {
        throw new Error(`query ended ${done.view.state}: ${JSON.stringify(done.view.error)}`);
      }
      const check = await server.verify(result.url);
      if (check.size !== result.size || check.checksum !== result.checksum)
        throw new Error('download differs from the result');
      if (encodedChecksum && check.checksum !== encodedChecksum)
        throw new Error('the upload differs from the local encode');
      await server.deleteResult(gatewayId(0), query.id);
      progress(
        `query → URL: ${totalS.toFixed(2)} s for ${(result.size / 1e6).toFixed(1)} MB, ${result.rowCount} rows`,
        stages,
      );
      return {
        bench: 'query',
        rows: result.rowCount,
        parquet_bytes: result.size,
        total_s: round(totalS),
        encode_mb_s: encodeS === undefined ? null : round(result.size / 1e6 / encodeS, 1),
        encode_s: encodeS === undefined ? null : round(encodeS),
        read_s: readS === undefined ? null : round(readS),
        read_rows_s: readS === undefined ? null : Math.round(result.rowCount / readS),
        verified: true,
        stages_s: stages,
        storage: server.storage ?? (options['server-url'] ? 'unknown' : storage),
        codec,
        ...(codecChosen ? { codec_chosen: codecChosen.codec } : {}),
        ...codecChoiceFields(codecChosen),
        warmup: Boolean(options.warmup),
        link,
        ...machine(),
      };
    } finally {
      await gateway.stop();
    }
  } finally {
    await dataSource.close();
  }
}
