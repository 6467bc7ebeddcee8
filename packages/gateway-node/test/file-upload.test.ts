import { createZstdCodec } from '@backhaul/codec-zstd';
import { createChecksummer, type RetryPolicy } from '@backhaul/core';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type CodecChoice,
  createGateway,
  encodeCursorAsParquet,
  type Gateway,
  type GatewayOptions,
  type ParquetFileCompression,
} from '../src/index.js';
import { type FakeServer, type FakeServerOptions, startFakeServer, until } from './fake-server.js';
import { createOrdersDatabase } from './sqlite-fixture.js';

const ROWS = 20_000;
const CHUNK_SIZE = 65_536;
const fastRetry: RetryPolicy = { maxAttempts: 10, baseDelayMs: 5, maxDelayMs: 50 };

let database: ReturnType<typeof createOrdersDatabase>;
beforeAll(() => {
  database = createOrdersDatabase(ROWS);
});
afterAll(() => database.cleanup());

let server: FakeServer | undefined;
let gateway: Gateway | undefined;
afterEach(async () => {
  await gateway?.stop().catch(() => {});
  await server?.close();
  gateway = undefined;
  server = undefined;
});

async function setup(serverOptions: FakeServerOptions = {}, overrides: Partial<GatewayOptions> = {}) {
  server = await startFakeServer({
    ...serverOptions,
    hello: { chunkSize: CHUNK_SIZE, ...serverOptions.hello },
  });
  gateway = createGateway({
    serverUrl: server.url,
    token: 'good-token',
    dataSource: createSqliteDataSource({ filename: database.filename }),
    retry: fastRetry,
    progressIntervalMs: 50,
    // Uncompressed pages: a file big and compressible enough to exercise chunking and the chunk codecs.
    parquetCompression: 'none',
    ...overrides,
  });
  await gateway.start();
  return { server, gateway };
}

async function expectedParquet(sql: string, compression: ParquetFileCompression = 'none'): Promise<Buffer> {
  const source = createSqliteDataSource({ filename: database.filename });
  const pieces: Uint8Array[] = [];
  const cursor = await source.query({ sql, params: [], columnar: true });
  for await (const piece of encodeCursorAsParquet(cursor, { compression })) pieces.push(piece);
  await source.close();
  return Buffer.concat(pieces);
}

const arrayBufferOf = (bytes: Buffer): ArrayBuffer =>
  bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;

/**
 * Holds every chunk answer of a file until its chunk `index` has arrived. The gateway decides a
 * chunk's codec before sending it, so the samples up to `index` are decided with no PUT answered.
 */
function holdAnswersUntilChunk(server: FakeServer, index: number): void {
  const arrived = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  server.chunkAnswerGate = (commandId, chunkIndex) => {
    let gate = arrived.get(commandId);
    if (!gate) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      gate = { promise, resolve };
      arrived.set(commandId, gate);
    }
    if (chunkIndex >= index) gate.resolve();
    return gate.promise;
  };
}

describe('§6 file mode: Parquet cut into chunks, checksummed, uploaded and completed', () => {
  it('the chunks the server received, decoded and concatenated, are the Parquet file of the query', async () => {
    const { server } = await setup();
    const sql = 'SELECT * FROM orders ORDER BY id';
    server.send({ id: 'file-1', sql, mode: 'file' });
    await until(() => server.completions.has('file-1'), 'completion');
    const file = server.file('file-1');
    expect(Buffer.compare(file, await expectedParquet(sql))).toBe(0);

    // §6.1 every chunk but the last is exactly chunkSize.
    const chunks = [...server.chunks.get('file-1')!.values()].sort((a, b) => a.index - b.index);
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks.slice(0, -1)) expect(chunk.raw.length).toBe(CHUNK_SIZE);

    // §6.4 the completion states size, chunk count, row count and the whole-file xxhash64.
    const checksummer = await createChecksummer();
    expect(server.completions.get('file-1')).toEqual({
      kind: 'file',
      format: 'parquet',
      size: file.length,
      checksum: checksummer.digest(file),
      rowCount: ROWS,
      chunkCount: chunks.length,
    });

    const metadata = parquetMetadata(arrayBufferOf(file));
    expect(Number(metadata.num_rows)).toBe(ROWS);
    const rows = await parquetReadObjects({ file: arrayBufferOf(file), rowStart: 6, rowEnd: 7, compressors });
    expect(rows[0]).toMatchObject({ id: 7n, customer: 'customer-7', amount: 2.59, paid: true, note: null });
  });

  it("zstd pages by default, which 'auto' sends as identity: there is nothing left to compress", async () => {
    const zstd = createZstdCodec();
    const { server, gateway } = await setup(
      { codecs: [zstd] },
      { codecs: [zstd], preferredCodec: 'auto', parquetCompression: undefined },
    );
    const choices: CodecChoice[] = [];
    gateway.on((event) => {
      if (event.type === 'codec-chosen') choices.push(event);
    });
    const sql = 'SELECT * FROM orders ORDER BY id';
    server.send({ id: 'zstd-pages', sql, mode: 'file' });
    await until(() => server.completions.has('zstd-pages'), 'completion');
    const file = server.file('zstd-pages');
    expect(Buffer.compare(file, await expectedParquet(sql, 'zstd'))).toBe(0);
    const codecs = new Set(
      parquetMetadata(arrayBufferOf(file)).row_groups.flatMap((g) =>
        g.columns.map((c) => c.meta_data?.codec),
      ),
    );
    expect(codecs).toEqual(new Set(['ZSTD']));
    const chunks = [...server.chunks.get('zstd-pages')!.values()];
    expect(new Set(chunks.map((c) => c.codec))).toEqual(new Set(['identity']));
    await until(() => choices.length === 1, 'codec-chosen');
    expect(choices[0]).toMatchObject({ codec: 'identity', reason: 'data' });
  });

  it('uses zstd when the gateway has it and the server accepts it', async () => {
    const { server } = await setup({ codecs: [createZstdCodec()] }, { codecs: [createZstdCodec()] });
    server.send({ id: 'zstd-file', sql: 'SELECT * FROM orders', mode: 'file' });
    await until(() => server.completions.has('zstd-file'), 'completion');
    const chunks = [...server.chunks.get('zstd-file')!.values()];
    expect(new Set(chunks.map((c) => c.codec))).toEqual(new Set(['zstd']));
    expect(Buffer.compare(server.file('zstd-file'), await expectedParquet('SELECT * FROM orders'))).toBe(0);
  });

  it("preferredCodec 'auto' keeps zstd for a file that compresses, sends one that does not as identity, sampling every 8th chunk, and says so", async () => {
    const zstd = createZstdCodec();
    const { server, gateway } = await setup({ codecs: [zstd] }, { codecs: [zstd], preferredCodec: 'auto' });
    const chosen = new Map<string, CodecChoice>();
    gateway.on((event) => {
      if (event.type === 'codec-chosen') chosen.set(event.commandId, event);
    });
    const plain = 'SELECT * FROM orders ORDER BY id';
    // randomblob: bytes zstd cannot shrink, like the pages of an already compressed Parquet file.
    const noise = 'SELECT id, randomblob(4000) AS noise FROM orders ORDER BY id LIMIT 200';
    // Both samples of each file (chunks 0 and 8) are decided before any chunk is answered, so
    // before the link is measured: the data alone decides here (the link rule: codec-choice.test.ts).
    holdAnswersUntilChunk(server, 8);
    server.send({ id: 'auto-plain', sql: plain, mode: 'file' });
    server.send({ id: 'auto-noise', sql: noise, mode: 'file' });
    await until(
      () => server.completions.has('auto-plain') && server.completions.has('auto-noise'),
      'completions',
    );

    const codecsOf = (id: string) => new Set([...server.chunks.get(id)!.values()].map((c) => c.codec));
    expect(codecsOf('auto-plain')).toEqual(new Set(['zstd']));
    expect(chosen.get('auto-plain')).toMatchObject({ codec: 'zstd', reason: 'data' });
    expect(chosen.get('auto-plain')!.sampleRatio).toBeLessThanOrEqual(0.9);
    expect(Buffer.compare(server.file('auto-plain'), await expectedParquet(plain))).toBe(0);

    expect(codecsOf('auto-noise')).toEqual(new Set(['identity']));
    expect(chosen.get('auto-noise')).toMatchObject({ codec: 'identity', reason: 'data' });
    expect(chosen.get('auto-noise')!.sampleRatio).toBeGreaterThan(0.9);
    // Every 8th chunk is a sample: a file of more than 8 chunks was sampled more than once.
    const noiseChunks = server.chunks.get('auto-noise')!.size;
    expect(noiseChunks).toBeGreaterThan(8);
    expect(chosen.get('auto-noise')).toMatchObject({
      samples: Math.ceil(noiseChunks / 8),
      chunks: { identity: noiseChunks },
    });
    const completion = server.completions.get('auto-noise') as { size: number; rowCount: number };
    expect(completion).toMatchObject({ size: server.file('auto-noise').length, rowCount: 200 });
  });

  it("'auto' follows a file that changes: compressible chunks go as zstd, the stretches after a sample that did not shrink as identity", async () => {
    const zstd = createZstdCodec();
    const { server, gateway } = await setup({ codecs: [zstd] }, { codecs: [zstd], preferredCodec: 'auto' });
    let choice: CodecChoice | undefined;
    gateway.on((event) => {
      if (event.type === 'codec-chosen') choice = event;
    });
    // One row group, column by column: ~6 chunks of zeros, then ~18 chunks of noise.
    const sql =
      'SELECT id, CASE WHEN id <= 100 THEN zeroblob(4000) ELSE randomblob(4000) END AS payload FROM orders ORDER BY id LIMIT 400';
    server.send({ id: 'auto-mixed', sql, mode: 'file' });
    await until(() => server.completions.has('auto-mixed'), 'completion');
    const chunks = [...server.chunks.get('auto-mixed')!.values()].sort((a, b) => a.index - b.index);
    // The first stretch (chunks 0-7) follows its sample, chunk 0; every later sample is noise.
    expect(chunks.map((c) => c.codec)).toEqual(chunks.map((c) => (c.index < 8 ? 'zstd' : 'identity')));
    // Noise is refused by the data rule, whatever the link: no timing decides this test.
    expect(choice).toMatchObject({
      codec: 'identity',
      reason: 'data',
      samples: Math.ceil(chunks.length / 8),
      chunks: { zstd: 8, identity: chunks.length - 8 },
    });
    const completion = server.completions.get('auto-mixed') as { size: number };
    expect(server.file('auto-mixed').length).toBe(completion.size);
    expect(Buffer.compare(server.file('auto-mixed').subarray(0, 4), Buffer.from('PAR1'))).toBe(0);
  });

  it("'auto' weighs the link once its PUTs are answered: the later samples are decided by the measured goodput", async () => {
    const zstd = createZstdCodec();
    // One chunk in flight: chunk 8, the second sample, starts only once chunks 0-7 are answered.
    const { server, gateway } = await setup(
      { codecs: [zstd] },
      { codecs: [zstd], preferredCodec: 'auto', chunksInFlight: 1 },
    );
    let choice: CodecChoice | undefined;
    gateway.on((event) => {
      if (event.type === 'codec-chosen') choice = event;
    });
    const sql = 'SELECT * FROM orders ORDER BY id';
    server.send({ id: 'auto-link', sql, mode: 'file' });
    await until(() => server.completions.has('auto-link'), 'completion');
    const chunks = [...server.chunks.get('auto-link')!.values()].sort((a, b) => a.index - b.index);
    expect(chunks.length).toBeGreaterThan(8);
    // The first stretch had no goodput yet: the data kept zstd. Which codec the link picks for the
    // second depends on this machine's speed, so only its consistency and the report are checked.
    expect(chunks.slice(0, 8).map((c) => c.codec)).toEqual(Array(8).fill('zstd'));
    expect(new Set(chunks.slice(8, 16).map((c) => c.codec)).size).toBe(1);
    expect(choice).toMatchObject({ samples: Math.ceil(chunks.length / 8) });
    expect(choice!.goodput).toBeGreaterThan(0);
    expect(Buffer.compare(server.file('auto-link'), await expectedParquet(sql))).toBe(0);
  });

  it('a chunk that fails twice with 503 is retried and succeeds', async () => {
    const { server } = await setup();
    server.chunkFault = (_id, index, attempt) =>
      index === 1 && attempt <= 2 ? { status: 503, code: 'service-unavailable', retryable: true } : undefined;
    server.send({ id: 'flaky', sql: 'SELECT * FROM orders', mode: 'file' });
    await until(() => server.completions.has('flaky'), 'completion');
    expect(server.chunks.get('flaky')!.get(1)!.attempts).toBe(3);
    expect(server.failures.size).toBe(0);
  });

  it('§6.2 422 checksum-mismatch is retried', async () => {
    const { server } = await setup();
    server.chunkFault = (_id, index, attempt) =>
      index === 0 && attempt === 1 ? { status: 422, code: 'checksum-mismatch', retryable: true } : undefined;
    server.send({ id: 'mismatch', sql: 'SELECT * FROM orders', mode: 'file' });
    await until(() => server.completions.has('mismatch'), 'completion');
    expect(server.chunks.get('mismatch')!.get(0)!.attempts).toBe(2);
  });

  it('§2 Retry-After is honoured: no retry before the server said', async () => {
    const { server } = await setup();
    server.chunkFault = (_id, index, attempt) =>
      index === 2 && attempt === 1
        ? { status: 503, code: 'service-unavailable', retryable: true, retryAfter: '0.4' }
        : undefined;
    server.send({ id: 'retry-after', sql: 'SELECT * FROM orders', mode: 'file' });
    await until(() => server.completions.has('retry-after'), 'completion');
    const [first, second] = server.chunks.get('retry-after')!.get(2)!.attemptTimes;
    expect(second! - first!).toBeGreaterThanOrEqual(390);
  });

  it('§6.2 409 chunk-conflict is fatal: the command fails, no completion', async () => {
    const { server } = await setup();
    server.chunkFault = (_id, index) =>
      index === 1 ? { status: 409, code: 'chunk-conflict', retryable: false } : undefined;
    server.send({ id: 'conflict', sql: 'SELECT * FROM orders', mode: 'file' });
    await until(() => server.failures.has('conflict'), 'failure');
    expect(server.failures.get('conflict')).toMatchObject({ code: 'chunk-conflict' });
    expect(server.completions.has('conflict')).toBe(false);
  });

  it('never more than chunksInFlight chunk requests are open at once', async () => {
    const { server } = await setup({ chunkDelayMs: 15 }, { chunksInFlight: 3 });
    server.send({ id: 'window', sql: 'SELECT * FROM orders', mode: 'file' });
    await until(() => server.completions.has('window'), 'completion');
    expect(server.chunkRequests.maxOpen).toBeLessThanOrEqual(3);
    // And the window is used: uploads overlap.
    expect(server.chunkRequests.maxOpen).toBeGreaterThanOrEqual(2);
  });

  it("never more chunks in flight than the server's chunkWindow", async () => {
    const { server } = await setup({ chunkDelayMs: 15, hello: { chunkWindow: 2 } }, { chunksInFlight: 16 });
    server.send({ id: 'small-window', sql: 'SELECT * FROM orders', mode: 'file' });
    await until(() => server.completions.has('small-window'), 'completion');
    expect(server.chunkRequests.maxOpen).toBeLessThanOrEqual(2);
  });

  it('§6.2 one slow chunk is not overtaken past the chunkWindow: no chunk goes where the server would refuse it', async () => {
    const { server } = await setup({ hello: { chunkWindow: 8 } }, { chunksInFlight: 4 });
    // Chunk 0's answer is held until chunks 0-7 (all the window allows) arrived, and a while longer:
    // time for an uploader that counted only requests in flight to send 8, 9, … as well.
    const arrived: number[] = [];
    let chunkZeroAnswered = false;
    let releaseChunkZero!: () => void;
    const chunkZero = new Promise<void>((resolve) => {
      releaseChunkZero = resolve;
    });
    server.chunkAnswerGate = (_commandId, index) => {
      if (!chunkZeroAnswered) arrived.push(index);
      if (arrived.length === 8) setTimeout(releaseChunkZero, 300);
      if (index !== 0) return undefined;
      return chunkZero.then(() => {
        chunkZeroAnswered = true;
      });
    };
    const sql = 'SELECT * FROM orders ORDER BY id';
    server.send({ id: 'slow-first', sql, mode: 'file' });
    await until(() => server.completions.has('slow-first'), 'completion');
    expect(arrived.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(server.chunks.get('slow-first')!.size).toBeGreaterThan(8);
    expect(Buffer.compare(server.file('slow-first'), await expectedParquet(sql))).toBe(0);
  });
});

describe('§3.9 auto mode: rows live while the result is small, then a file of every row', () => {
  it('a small result goes as rows', async () => {
    const { server } = await setup();
    server.send({
      id: 'auto-small',
      sql: 'SELECT * FROM orders WHERE id <= 50',
      mode: 'auto',
      rowsByteLimit: 1_000_000,
    });
    await until(() => server.completions.has('auto-small'), 'completion');
    expect(server.completions.get('auto-small')).toEqual({ kind: 'rows', rowCount: 50, batchCount: 1 });
    expect(server.chunks.has('auto-small')).toBe(false);
  });

  it('a large result sends its head live within rowsByteLimit, then a file that holds every row, the live ones first', async () => {
    const { server } = await setup({}, { rowBatchSize: 100 });
    const sql = 'SELECT * FROM orders ORDER BY id';
    // The live batches the first chunk found: every one was answered before it went out.
    let liveAtFirstChunk: number | undefined;
    server.chunkAnswerGate = (id, index) => {
      if (index === 0) liveAtFirstChunk ??= server.rows.get(id)?.length ?? 0;
      return undefined;
    };
    server.send({ id: 'auto-large', sql, mode: 'auto', rowsByteLimit: 100_000 });
    await until(() => server.completions.has('auto-large'), 'completion');
    expect(server.completions.get('auto-large')).toMatchObject({ kind: 'file', rowCount: ROWS });

    const live = server.rows.get('auto-large') ?? [];
    expect(live.map((batch) => batch.seq)).toEqual(live.map((_, seq) => seq));
    expect(live.length).toBeGreaterThan(1);
    expect(liveAtFirstChunk).toBe(live.length);
    // Within the limit, and the next batch of 100 rows would not have fitted.
    const liveBytes = live.reduce((sum, batch) => sum + Buffer.byteLength(JSON.stringify(batch.rows)) - 2, 0);
    expect(liveBytes).toBeLessThanOrEqual(100_000);
    expect(liveBytes + liveBytes / live.length).toBeGreaterThan(100_000 * 0.95);

    const file = server.file('auto-large');
    const ids = (await parquetReadObjects({ file: arrayBufferOf(file), columns: ['id'], compressors })).map(
      (r) => Number(r.id),
    );
    expect(ids).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
    const liveIds = live.flatMap((batch) => batch.rows.map((row) => Number(row[0])));
    expect(liveIds).toEqual(ids.slice(0, liveIds.length));
  });

  it('a first batch already past the limit sends only batch 0 with the columns, then the file', async () => {
    const { server } = await setup();
    server.send({
      id: 'auto-at-once',
      sql: 'SELECT * FROM orders ORDER BY id',
      mode: 'auto',
      rowsByteLimit: 100,
    });
    await until(() => server.completions.has('auto-at-once'), 'completion');
    expect(server.completions.get('auto-at-once')).toMatchObject({ kind: 'file', rowCount: ROWS });
    const live = server.rows.get('auto-at-once') ?? [];
    expect(live).toHaveLength(1);
    expect(live[0]).toMatchObject({ seq: 0, rows: [] });
    expect(live[0]?.columns?.[0]).toMatchObject({ name: 'id' });
  });
});
