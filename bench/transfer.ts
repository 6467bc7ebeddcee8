// npm run bench:transfer: a ~100 MB Parquet file from a gateway to a verified URL, against two
// baselines (raw: one streaming POST; naive: sequential 512 KiB POSTs) over the same link and storage.
import { join } from 'node:path';
import { createLz4Codec } from '@backhaul/codec-lz4';
import { createZstdCodec } from '@backhaul/codec-zstd';
import { DEFAULT_CHUNKS_IN_FLIGHT } from '@backhaul/gateway-node';
import { naiveUpload, rawUpload } from './lib/baselines.js';
import { benchServer } from './lib/bench-api.js';
import { type ByteGateway, connectByteGateway } from './lib/byte-gateway.js';
import { type DatasetFile, DEFAULT_ROWS, ensureParquetFile, fileBytes } from './lib/dataset.js';
import { oneOf, parseOptions, toFlags } from './lib/options.js';
import { machine } from './lib/proc.js';
import { codecChoiceFields, mb, progress, round, runMain } from './lib/report.js';
import { type ServerSide, startServerSide } from './lib/setup.js';
import { spawnTs } from './lib/spawn.js';
import { gatewayId, gatewayToken } from './lib/tokens.js';
import { requireWan, tcpSettings, WAN } from './lib/wan.js';

const spec = {
  storage: { default: 's3', help: 'fs | s3 (s3rver started by the bench)' },
  codec: {
    default: 'zstd',
    help: 'chunk codec: zstd | lz4 | none | auto (zstd per 8-chunk stretch if it saves 10 % and is worth its time on this link)',
  },
  'parquet-compression': {
    default: 'none',
    help: 'compression inside the Parquet file: none | snappy | zstd',
  },
  'server-url': {
    default: undefined,
    help: 'run the gateway side only, against this server (no server started)',
  },
  wan: {
    default: false,
    help: 'server side in netns bh_api, gateway side in bh_gw (run wanem/wan-up first)',
  },
  rows: { default: DEFAULT_ROWS, help: 'rows in the dataset (2.2 M ≈ 100 MB uncompressed)' },
  'chunks-in-flight': {
    default: DEFAULT_CHUNKS_IN_FLIGHT,
    help: 'chunk PUTs in flight (the gateway option chunksInFlight)',
  },
  runs: { default: 1, help: 'timed runs of each method; the median is reported' },
  warmup: { default: true, help: 'move 8 MiB through each method first (JIT, connections, s3rver)' },
  baselines: { default: true, help: 'also run the raw and naive baselines' },
  'shared-uploads': {
    default: false,
    help: 'the server stages each chunk and assembles at completion, as instances sharing an upload ledger do (docs/cluster.md)',
  },
  verify: { default: true, help: 'download the result through its URL and compare its xxhash64' },
} as const;

const options = parseOptions('transfer', spec);
const storage = oneOf('storage', options.storage, ['fs', 's3'] as const);
const codecOption = oneOf('codec', options.codec, ['zstd', 'lz4', 'none', 'auto'] as const);
const compression = oneOf('parquet-compression', options['parquet-compression'], [
  'none',
  'snappy',
  'zstd',
] as const);
let serverSide: ServerSide | undefined;

runMain(
  'transfer',
  async () => {
    const dataset = await ensureParquetFile(options.rows, compression);
    if (options.wan) return runAcrossWan(dataset);
    let url = options['server-url'];
    if (!url) {
      serverSide = await startServerSide({ storage, wan: false, sharedUploads: options['shared-uploads'] });
      url = serverSide.server.url;
    }
    return gatewaySide(url.replace(/\/+$/, ''), dataset, options['server-url'] ? 'url' : 'loopback');
  },
  async () => {
    await serverSide?.stop();
  },
);

/** --wan: the server side in bh_api, then this same bench as the gateway side in bh_gw. */
async function runAcrossWan(dataset: DatasetFile): Promise<Record<string, unknown>> {
  requireWan();
  serverSide = await startServerSide({ storage, wan: true });
  const child = spawnTs(
    join('bench', 'transfer.ts'),
    toFlags({ ...options, wan: false, 'server-url': serverSide.server.url }),
    { netns: WAN.gatewayNs, label: WAN.gatewayNs },
  );
  const { code, lastJson } = await child.exited;
  if (code !== 0 || !lastJson) throw new Error(`the gateway side in ${WAN.gatewayNs} failed (exit ${code})`);
  return {
    ...lastJson,
    link: 'wan',
    dataset_bytes: dataset.bytes,
    tcp_gateway: tcpSettings(WAN.gatewayNs),
    tcp_server: tcpSettings(WAN.serverNs),
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;
const seconds = (from: bigint, to: bigint | undefined) =>
  to === undefined ? undefined : round(Number(to - from) / 1e9);

async function gatewaySide(
  url: string,
  dataset: DatasetFile,
  link: string,
): Promise<Record<string, unknown>> {
  const server = await benchServer(url);
  if (!server.routes) {
    progress('the server has no /bench routes (a plain Backhaul server): no baselines, the caller runs here');
  }
  const codecs = [createZstdCodec(), createLz4Codec()];
  const gateway = await connectByteGateway({
    serverUrl: url,
    token: gatewayToken(0),
    codecs,
    codec: codecOption === 'none' ? 'identity' : codecOption,
    chunksInFlight: options['chunks-in-flight'],
  });
  progress(
    `gateway connected (chunkSize ${gateway.hello.chunkSize}, chunkWindow ${gateway.hello.chunkWindow})`,
  );
  try {
    if (options.warmup) {
      // Enough chunks to open every connection of the gateway's pool (twice the window), so
      // the timed runs measure warm connections, not handshakes and slow start.
      // (No more than the dataset holds: a small --rows file is warmed whole.)
      const limit = Math.min(
        dataset.bytes,
        Math.max(8 << 20, 2 * options['chunks-in-flight'] * gateway.hello.chunkSize),
      );
      await backhaulRun(server, gateway, dataset, limit);
      if (server.routes && options.baselines) {
        await rawUpload(url, dataset.path, 'bench/warmup-raw.bin', limit);
        await naiveUpload(url, dataset.path, 'bench/warmup-naive.bin', limit);
        await server.deleteObject('bench/warmup-raw.bin');
        await server.deleteObject('bench/warmup-naive.bin');
      }
      progress(`warm-up done (${(limit / (1 << 20)).toFixed(0)} MiB through each method)`);
    }
    const runs: { backhaul: Awaited<ReturnType<typeof backhaulRun>>; raw_s?: number; naive_s?: number }[] =
      [];
    for (let run = 0; run < options.runs; run++) {
      const backhaul = await backhaulRun(server, gateway, dataset);
      progress(
        `backhaul: ${backhaul.seconds.toFixed(3)} s, ${(mb(dataset.bytes) / backhaul.seconds).toFixed(1)} MiB/s`,
        backhaul.stages,
      );
      const entry: (typeof runs)[number] = { backhaul };
      if (server.routes && options.baselines) {
        const key = `bench/raw-${process.pid}-${run}.bin`;
        const raw = await rawUpload(url, dataset.path, key);
        if (raw.size !== dataset.bytes)
          throw new Error(`raw stored ${raw.size} bytes, expected ${dataset.bytes}`);
        await server.deleteObject(key);
        progress(`raw: ${raw.seconds.toFixed(3)} s, ${(mb(dataset.bytes) / raw.seconds).toFixed(1)} MiB/s`);
        const naiveKey = `bench/naive-${process.pid}-${run}.bin`;
        const naive = await naiveUpload(url, dataset.path, naiveKey);
        if (naive.size !== dataset.bytes)
          throw new Error(`naive stored ${naive.size} bytes, expected ${dataset.bytes}`);
        await server.deleteObject(naiveKey);
        progress(
          `naive: ${naive.seconds.toFixed(3)} s, ${(mb(dataset.bytes) / naive.seconds).toFixed(1)} MiB/s`,
        );
        entry.raw_s = raw.seconds;
        entry.naive_s = naive.seconds;
      }
      runs.push(entry);
    }
    const backhaulS = median(runs.map((r) => r.backhaul.seconds));
    const rawS = server.routes && options.baselines ? median(runs.map((r) => r.raw_s!)) : null;
    const naiveS = server.routes && options.baselines ? median(runs.map((r) => r.naive_s!)) : null;
    const middle = runs.find((r) => r.backhaul.seconds === backhaulS)!.backhaul;
    return {
      bench: 'transfer',
      bytes: dataset.bytes,
      storage: server.storage ?? (options['server-url'] ? 'unknown' : storage),
      codec: codecOption,
      backhaul_s: round(backhaulS),
      raw_s: rawS === null ? null : round(rawS),
      naive_s: naiveS === null ? null : round(naiveS),
      ratio_raw: rawS === null ? null : round(backhaulS / rawS),
      codec_chosen: middle.codec,
      ...codecChoiceFields(middle.choice),
      wire_bytes: middle.wireBytes,
      stages_s: middle.stages,
      verified: middle.verified,
      parquet_compression: compression,
      rows: dataset.rows,
      parquet_encode_s: round(dataset.encodeS),
      chunks_in_flight: options['chunks-in-flight'],
      runs: runs.map((r) => ({
        backhaul_s: round(r.backhaul.seconds),
        raw_s: r.raw_s && round(r.raw_s),
        naive_s: r.naive_s && round(r.naive_s),
      })),
      link,
      caller: server.routes ? 'next to the server' : 'on the gateway side',
      ...machine(),
    };
  } finally {
    await gateway.stop();
  }
}

/** One file through Backhaul: command issued → … → URL ready, checksum verified by the server. */
async function backhaulRun(
  server: Awaited<ReturnType<typeof benchServer>>,
  gateway: ByteGateway,
  dataset: DatasetFile,
  limit?: number,
) {
  const query = await server.submit({
    gatewayId: gatewayId(0),
    sql: 'SELECT * FROM bench_dataset',
    mode: 'file',
  });
  const command = await gateway.nextCommand();
  if (command.id !== query.id) throw new Error(`expected command ${query.id}, got ${command.id}`);
  const served = await gateway.serve(command, fileBytes(dataset.path, limit), limit ? 0 : dataset.rows);
  const done = await query.done();
  const wireBytes = served.wireBytes;
  if (served.choice && !limit) progress(`codec auto chose ${served.codec}`, { ...served.choice });
  if (done.view.state !== 'completed' || done.view.result?.kind !== 'file') {
    throw new Error(`query ended ${done.view.state}: ${JSON.stringify(done.view.error ?? done.view)}`);
  }
  const result = done.view.result;
  const expectedSize = limit ?? dataset.bytes;
  if (result.size !== expectedSize) throw new Error(`stored ${result.size} bytes, expected ${expectedSize}`);
  let verified: boolean | undefined;
  if (!limit && options.verify) {
    const check = await server.verify(result.url);
    verified = check.size === dataset.bytes && check.checksum === dataset.checksum;
    if (!verified) throw new Error(`download differs: ${JSON.stringify(check)} vs ${dataset.checksum}`);
  }
  await server.deleteResult(gatewayId(0), query.id);
  const t = served.times;
  const from = query.issuedNs;
  return {
    seconds: Number(done.completedNs - from) / 1e9,
    wireBytes,
    codec: served.codec,
    choice: served.choice,
    verified,
    stages: {
      command_received: seconds(from, t.commandNs),
      acked: seconds(from, t.ackedNs),
      first_chunk_sent: seconds(from, t.firstChunkNs),
      last_chunk_stored: seconds(from, t.lastChunkNs),
      completion_answered: seconds(from, t.completedNs),
      url_ready: seconds(from, done.completedNs),
    },
  };
}
