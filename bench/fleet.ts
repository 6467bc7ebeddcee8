// npm run bench:fleet: N simulated gateways on SSE to one server process: connect time, server RSS
// per gateway, unicast delivery latency under that load, a command to every gateway, idle CPU.
import { Agent } from 'undici';
import { submitQuery } from './lib/caller.js';
import { parseOptions } from './lib/options.js';
import { cpuSeconds, machine, rssKb } from './lib/proc.js';
import { progress, round, runMain } from './lib/report.js';
import { type ServerSide, startServerSide } from './lib/setup.js';
import { Fleet } from './lib/sse-fleet.js';
import { now, percentile, sleep } from './lib/timing.js';
import { gatewayToken } from './lib/tokens.js';

const spec = {
  gateways: { default: 1000, help: 'simulated gateways (1000, 5000, 10000 …)' },
  'source-addresses': {
    default: 8,
    help: 'source addresses 127.0.0.2 … used round-robin (ports per address are finite)',
  },
  'connect-concurrency': { default: 256, help: 'connections being opened at once' },
  unicast: { default: 500, help: 'commands sent to one random gateway each' },
  'unicast-interval-ms': { default: 10, help: 'pause between unicast commands (a steady load, not a burst)' },
  'submit-concurrency': { default: 64, help: 'caller requests in flight during the broadcast' },
  ack: { default: true, help: 'the simulated gateways ack every command (POST …/ack)' },
  'heartbeat-ms': { default: 15000, help: 'server heartbeat interval; the idle CPU is measured over one' },
} as const;

const options = parseOptions('fleet', spec);
let serverSide: ServerSide | undefined;
let fleet: Fleet | undefined;

runMain(
  'fleet',
  async () => {
    const n = options.gateways;
    const { execFileSync } = await import('node:child_process');
    const limit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
    if (Number.isFinite(limit) && limit < n + 200) {
      throw new Error(
        `the open-file limit is ${limit}; ${n} gateways need at least ${n + 200}: run \`ulimit -n ${n + 1000}\` first`,
      );
    }
    serverSide = await startServerSide({
      storage: 'fs',
      wan: false,
      gateways: n,
      heartbeatMs: options['heartbeat-ms'],
      nofile: Number.isFinite(limit) ? limit : n + 1000,
    });
    const { server } = serverSide;
    const caller = new Agent({ connections: options['submit-concurrency'], pipelining: 1 });
    const submit = (gateway: number) => submitQuery(server.url, gateway, caller);
    // Warm the server's caller path and JIT before the baseline RSS.
    await sleep(500);
    const rssBefore = rssKb(server.pid);
    progress(`server RSS before connections: ${rssBefore} kB`);

    const sourceAddresses = Array.from({ length: options['source-addresses'] }, (_, i) => `127.0.0.${i + 2}`);
    fleet = new Fleet({
      serverUrl: server.url,
      tokens: Array.from({ length: n }, (_, i) => gatewayToken(i)),
      sourceAddresses,
      connectConcurrency: options['connect-concurrency'],
      ack: options.ack,
    });
    const connectStart = now();
    await fleet.connectAll((connected) => progress(`${connected} connected`));
    const connectS = (now() - connectStart) / 1000;
    progress(`all ${n} gateways connected in ${connectS.toFixed(2)} s`);
    await sleep(1000);
    const rssConnected = rssKb(server.pid);
    const rssPerGateway = (rssConnected - rssBefore) / n;
    progress(`server RSS with ${n} streams: ${rssConnected} kB (${rssPerGateway.toFixed(1)} kB per gateway)`);

    // Unicast: one command at a time to a random gateway, at a steady pace, under the fleet's load.
    let seed = 12345;
    const pick = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const latencies: number[] = [];
    const submitLatencies: number[] = [];
    for (let i = 0; i < options.unicast; i++) {
      const target = pick();
      const sentNs = process.hrtime.bigint();
      const id = await submit(target);
      submitLatencies.push(Number(process.hrtime.bigint() - sentNs) / 1e6);
      const delivery = await fleet.delivered(id);
      if (delivery.gateway !== target)
        throw new Error(`command for gateway ${target} reached ${delivery.gateway}`);
      latencies.push(Number(delivery.receivedNs - sentNs) / 1e6);
      await sleep(options['unicast-interval-ms']);
    }
    const unicast = {
      p50: round(percentile(latencies, 50), 2),
      p99: round(percentile(latencies, 99), 2),
      max: round(Math.max(...latencies), 2),
    };
    progress(`unicast submit → received (ms)`, unicast);

    // Broadcast: a command to every gateway through the caller API; time until the last has it.
    const broadcastStart = process.hrtime.bigint();
    const ids: string[] = new Array(n);
    let nextGateway = 0;
    await Promise.all(
      Array.from({ length: options['submit-concurrency'] }, async () => {
        while (nextGateway < n) {
          const gateway = nextGateway++;
          ids[gateway] = await submit(gateway);
        }
      }),
    );
    const submittedNs = process.hrtime.bigint();
    const arrivals = await Promise.all(ids.map((id) => fleet!.delivered(id)));
    let lastNs = 0n;
    for (const arrival of arrivals) if (arrival.receivedNs > lastNs) lastNs = arrival.receivedNs;
    const broadcastS = Number(lastNs - broadcastStart) / 1e9;
    const submitS = Number(submittedNs - broadcastStart) / 1e9;
    progress(
      `broadcast: ${n} commands submitted in ${submitS.toFixed(2)} s, the last arrived at ${broadcastS.toFixed(2)} s`,
    );

    // Idle: the server's CPU over one heartbeat period (heartbeats + deadline sweeps), acks settled.
    await sleep(2000);
    const heartbeatsBefore = fleet.heartbeats;
    const cpuBefore = cpuSeconds(server.pid);
    const idleStart = now();
    await sleep(options['heartbeat-ms']);
    const cpuS = cpuSeconds(server.pid) - cpuBefore;
    const idleS = (now() - idleStart) / 1000;
    const heartbeatCpuShare = cpuS / idleS;
    const heartbeats = fleet.heartbeats - heartbeatsBefore;
    progress(
      `idle over ${idleS.toFixed(1)} s: server CPU ${cpuS.toFixed(2)} s (${(heartbeatCpuShare * 100).toFixed(2)}% of a core), ${heartbeats} heartbeats received`,
    );
    const rssEnd = rssKb(server.pid);
    await caller.close();
    return {
      bench: 'fleet',
      gateways: n,
      connect_s: round(connectS),
      rss_kb_per_gateway: round(rssPerGateway, 1),
      unicast_p99_ms: unicast.p99,
      broadcast_s: round(broadcastS),
      unicast_p50_ms: unicast.p50,
      unicast_max_ms: unicast.max,
      unicast_submit_p50_ms: round(percentile(submitLatencies, 50), 2),
      unicast_count: latencies.length,
      broadcast_submit_s: round(submitS),
      heartbeat_cpu_share: round(heartbeatCpuShare, 4),
      heartbeat_ms: options['heartbeat-ms'],
      heartbeats_received: heartbeats,
      server_rss_kb: { before: rssBefore, connected: rssConnected, end: rssEnd },
      disconnects: fleet.disconnects,
      source_addresses: sourceAddresses.length,
      acks: options.ack,
      ...machine(),
    };
  },
  async () => {
    await fleet?.close();
    await serverSide?.stop();
  },
);
