import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLz4Codec } from '@backhaul/codec-lz4';
import { createZstdCodec } from '@backhaul/codec-zstd';
import { createChecksummer, DEFAULT_CHUNK_SIZE } from '@backhaul/core';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { lz4Bomb, zstdBomb } from '../support/bombs.js';
import { openRaw, requestHead } from '../support/raw-http.js';
import {
  freePort,
  processCallerToken,
  processGatewayToken,
  type ServerProcess,
  startServerProcess,
} from '../support/server-processes.js';

/**
 * docs/protocol.md §6.2: "A body larger than chunkSize plus codec overhead, or a decoded length
 * above chunkSize: 413 payload-too-large, decided before the output is allocated." Here over
 * HTTP, against a real server process, with inputs that would expand to a gibibyte or more,
 * while the server's resident memory is sampled from /proc.
 */

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** The budget: a bomb that were decoded even in part would blow far past it. */
const RSS_BUDGET = 64 * MiB;
const chunkSize = DEFAULT_CHUNK_SIZE;

const gatewayAuth = { authorization: `Bearer ${processGatewayToken}` };

/** Resident set size of a process, from /proc/<pid>/status (VmRSS, in kB). */
function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** Samples a process's RSS every few milliseconds until stopped: the peak is what counts. */
function sampleResident(pid: number) {
  let peak = residentBytes(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, residentBytes(pid));
    } catch {
      clearInterval(timer); // the process is gone; the test says why
    }
  }, 2);
  return {
    peak: () => peak,
    stop() {
      clearInterval(timer);
      if (existsSync(`/proc/${pid}/status`)) peak = Math.max(peak, residentBytes(pid));
      return peak;
    },
  };
}

/** Walks a zstd frame's RLE block headers and adds up what they would expand to. */
function zstdWouldExpandTo(frame: Uint8Array, headerLength: number): number {
  let total = 0;
  for (let offset = headerLength; offset < frame.length; offset += 4) {
    const header = frame[offset]! | (frame[offset + 1]! << 8) | (frame[offset + 2]! << 16);
    total += header >>> 3;
  }
  return total;
}

/** What an lz4-napi block of one literal, one offset-1 match and 5 literals expands to. */
function lz4WouldExpandTo(block: Uint8Array): number {
  let matchLength = 4 + 15;
  let offset = 8;
  while (block[offset] === 255) {
    matchLength += 255;
    offset++;
  }
  matchLength += block[offset]!;
  return 1 + matchLength + 5;
}

interface Figure {
  bomb: string;
  inputBytes: number;
  declared: string;
  wouldExpandTo: number;
  status: number;
  code: string;
  bytesTheClientGotOut?: number;
}

const linux = existsSync('/proc/self/status');

describe.skipIf(!linux)('§6.2 decompression bombs over HTTP, against a server process', () => {
  let dir: string;
  let server: ServerProcess;
  let stream: AbortController;
  let commandId: string;
  const figures: Figure[] = [];
  let rss: { before: number; peak: number; after: number } | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backhaul-bombs-'));
    server = await startServerProcess({ port: await freePort(), storageDir: dir, codecs: ['zstd', 'lz4'] });
    stream = new AbortController();
    commandId = await dispatchedFileCommand(server.url, stream.signal);
  }, 30_000);

  afterAll(async () => {
    stream?.abort();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (rss) {
      // The figures docs/reliability.md quotes.
      console.info(JSON.stringify({ figures, rss }, null, 1));
    }
  });

  it('the bombs are what they claim: checked at a small size against the real decoders', async () => {
    const small = 3 * MiB + 17;
    const zstd = createZstdCodec();
    expect((await zstd.decode(zstdBomb({ output: small }), small)).length).toBe(small);
    const lz4 = await createLz4Codec().decode(lz4Bomb({ output: small }), small);
    expect(lz4.length).toBe(small);
    expect(lz4.every((byte) => byte === 0)).toBe(true);
    expect(zstdWouldExpandTo(zstdBomb({ output: GiB }), 13)).toBe(GiB);
    expect(lz4WouldExpandTo(lz4Bomb({ output: GiB }))).toBe(GiB);
  });

  it('refuses every ≥ 1 GiB bomb with a problem, stores nothing, and RSS grows by less than 64 MB', async () => {
    // Warm up the chunk path (xxhash, both codecs) so the baseline is the server at work.
    const checksummer = await createChecksummer();
    const warm = await dispatchedFileCommand(server.url, stream.signal);
    const chunk = new Uint8Array(chunkSize).fill(7);
    const checksum = checksummer.digest(chunk);
    for (const [index, codec] of (['zstd', 'lz4'] as const).entries()) {
      const encoded = await (codec === 'zstd' ? createZstdCodec() : createLz4Codec()).encode(chunk);
      const response = await put(server.url, warm, index, encoded, {
        codec,
        checksum,
        rawLength: chunkSize,
      });
      expect(response.status).toBe(201);
    }

    const before = residentBytes(server.pid);
    const sampler = sampleResident(server.pid);
    onTestFinished(() => void sampler.stop());
    const honestZstd = zstdBomb({ output: GiB });
    const honestLz4 = lz4Bomb({ output: GiB });
    const zero = '0000000000000000';
    // Every bomb would expand to 1 GiB; it is refused as too large, or as an inconsistent frame.
    const refused = { wouldExpandTo: GiB, status: 413, code: 'payload-too-large' };
    const corrupt = { wouldExpandTo: GiB, status: 422, code: 'corrupt-data' };
    const lz4Lying = {
      body: honestLz4,
      codec: 'lz4',
      rawLength: chunkSize,
      declared: 'header 512 KiB, prefix 1 GiB',
    };

    const cases: {
      bomb: string;
      body: Uint8Array;
      codec: string;
      rawLength: number;
      declared: string;
      wouldExpandTo: number;
      status: number;
      code: string;
      chunked?: boolean;
    }[] = [
      {
        bomb: 'zstd frame declaring 1 GiB; Backhaul-Raw-Length 1 GiB',
        body: honestZstd,
        codec: 'zstd',
        rawLength: GiB,
        declared: 'header 1 GiB, frame 1 GiB',
        ...refused,
      },
      {
        bomb: 'zstd frame declaring 1 GiB; Backhaul-Raw-Length lies (512 KiB)',
        body: honestZstd,
        codec: 'zstd',
        rawLength: chunkSize,
        declared: 'header 512 KiB, frame 1 GiB',
        ...refused,
      },
      {
        bomb: 'zstd frame without a content size (streaming), 1 GiB of blocks',
        body: zstdBomb({ output: GiB, declaredSize: undefined }),
        codec: 'zstd',
        rawLength: chunkSize,
        declared: 'header 512 KiB, frame none',
        ...refused,
      },
      {
        // libzstd decodes into a buffer of the declared size and stops where it is full.
        bomb: 'zstd frame lying low: declares 512 KiB, its blocks make 1 GiB',
        body: zstdBomb({ output: GiB, declaredSize: chunkSize }),
        codec: 'zstd',
        rawLength: chunkSize,
        declared: 'header 512 KiB, frame 512 KiB',
        ...corrupt,
      },
      {
        // Each frame is honest and small; together they are a gibibyte.
        bomb: '2,048 concatenated zstd frames of 512 KiB each',
        body: Buffer.concat(Array.from({ length: GiB / chunkSize }, () => zstdBomb({ output: chunkSize }))),
        codec: 'zstd',
        rawLength: chunkSize,
        declared: 'header 512 KiB, first frame 512 KiB',
        ...corrupt,
      },
      {
        bomb: 'lz4 block of 1 GiB; Backhaul-Raw-Length 1 GiB',
        body: honestLz4,
        codec: 'lz4',
        rawLength: GiB,
        declared: 'header 1 GiB, prefix 1 GiB',
        ...refused,
      },
      {
        bomb: 'lz4 block of 1 GiB; Backhaul-Raw-Length lies (512 KiB), Content-Length sent',
        ...lz4Lying,
        ...refused,
      },
      {
        bomb: 'lz4 block of 1 GiB; Backhaul-Raw-Length lies, sent chunked (no Content-Length)',
        ...lz4Lying,
        ...refused,
        chunked: true,
      },
    ];

    for (const [index, bomb] of cases.entries()) {
      const headers = { codec: bomb.codec, checksum: zero, rawLength: bomb.rawLength };
      const outcome = bomb.chunked
        ? await putChunked(server.url, commandId, index, bomb.body, headers)
        : { response: await put(server.url, commandId, index, bomb.body, headers), sent: undefined };
      const { response } = outcome;
      const problem = (await response.json()) as { type: string; code: string; status: number };
      expect({ bomb: bomb.bomb, status: response.status }).toEqual({ bomb: bomb.bomb, status: bomb.status });
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(problem.code).toBe(bomb.code);
      expect(problem.type).toBe(`https://backhaul.dev/problems/${bomb.code}`);
      figures.push({
        bomb: bomb.bomb,
        inputBytes: bomb.body.length,
        declared: bomb.declared,
        wouldExpandTo: bomb.wouldExpandTo,
        status: response.status,
        code: problem.code,
        ...(outcome.sent === undefined ? {} : { bytesTheClientGotOut: outcome.sent }),
      });
    }

    // Nothing of any bomb was stored, and the server still takes an honest chunk.
    const receipt = await fetch(`${server.url}/v1/gateway/commands/${commandId}/chunks`, {
      headers: gatewayAuth,
    });
    expect(await receipt.json()).toEqual({ contiguous: 0, buffered: [], checksums: {} });
    const honest = await put(server.url, commandId, 0, await createZstdCodec().encode(chunk), {
      codec: 'zstd',
      checksum,
      rawLength: chunkSize,
    });
    expect(honest.status).toBe(201);

    const peak = sampler.stop();
    const after = residentBytes(server.pid);
    rss = { before, peak, after };
    expect(peak - before).toBeLessThan(RSS_BUDGET);
    expect(server.child.exitCode).toBeNull();
  }, 120_000);
});

interface ChunkHeaders {
  codec: string;
  checksum: string;
  rawLength: number;
}

const chunkHeaders = (headers: ChunkHeaders) => ({
  ...gatewayAuth,
  'content-type': 'application/octet-stream',
  'backhaul-codec': headers.codec,
  'backhaul-checksum': headers.checksum,
  'backhaul-raw-length': String(headers.rawLength),
});

function put(url: string, id: string, index: number, body: Uint8Array, headers: ChunkHeaders) {
  return fetch(`${url}/v1/gateway/commands/${id}/chunks/${index}`, {
    method: 'PUT',
    headers: chunkHeaders(headers),
    body,
  });
}

/**
 * PUTs a body with `Transfer-Encoding: chunked` in 64 KiB pieces, respecting backpressure, and
 * stops once the server answered or closed. Returns the answer and how many body bytes the
 * socket took before that.
 */
async function putChunked(
  url: string,
  id: string,
  index: number,
  body: Uint8Array,
  headers: ChunkHeaders,
): Promise<{ response: Response; sent: number }> {
  const target = `${url}/v1/gateway/commands/${id}/chunks/${index}`;
  const connection = await openRaw(target);
  await connection.write(
    requestHead('PUT', target, { ...chunkHeaders(headers), 'transfer-encoding': 'chunked' }),
  );
  let sent = 0;
  for (let offset = 0; offset < body.length; offset += 64 * 1024) {
    if (connection.response() || connection.closedByServer()) break;
    const piece = body.subarray(offset, offset + 64 * 1024);
    const ok = await connection.write(
      Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]),
    );
    if (!ok) break;
    sent += piece.length;
  }
  if (sent === body.length) await connection.write('0\r\n\r\n');
  await connection.closed;
  const answer = connection.response();
  if (!answer) throw new Error(`no answer to the chunked bomb: ${connection.received().slice(0, 200)}`);
  return {
    response: new Response(answer.body, { status: answer.status, headers: answer.headers }),
    sent,
  };
}

/** Submits a file query as the caller, reads it off the gateway's stream and acks it. */
async function dispatchedFileCommand(url: string, signal: AbortSignal): Promise<string> {
  const response = await fetch(`${url}/v1/gateway/commands`, {
    headers: { ...gatewayAuth, accept: 'text/event-stream' },
    signal,
  });
  if (!response.body) throw new Error('no stream');
  const reader = response.body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream())
    .getReader();
  const nextOf = async (type: string) => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before a ${type}`);
      if (value.event === type) return value;
    }
  };
  await nextOf('hello');
  const submitted = await fetch(`${url}/v1/queries`, {
    method: 'POST',
    headers: { authorization: `Bearer ${processCallerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ gatewayId: 'gw-process', sql: 'select 1', mode: 'file' }),
  });
  const { id } = (await submitted.json()) as { id: string };
  await nextOf('command');
  reader.releaseLock();
  const ack = await fetch(`${url}/v1/gateway/commands/${id}/ack`, { method: 'POST', headers: gatewayAuth });
  expect(ack.status).toBe(204);
  return id;
}
