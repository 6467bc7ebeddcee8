// npm run bench:cluster: several server processes on one Redis, each holding the streams of its
// share of simulated gateways; unicast delivery latency when the caller's instance holds the
// gateway's stream and when another one does; then one instance is SIGKILLed: how long until its
// gateways stream from the others again, and whether every command sent to them meanwhile arrives.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Agent } from 'undici';
import { submitQuery } from './lib/caller.js';
import { dataDir } from './lib/dataset.js';
import type { FleetWorkerConfig } from './lib/fleet-worker.js';
import { parseOptions } from './lib/options.js';
import { machine } from './lib/proc.js';
import { progress, round, runMain } from './lib/report.js';
import { type ServerProcess, startServerProcess } from './lib/server-process.js';
import { type Child, spawnTs } from './lib/spawn.js';
import { monotonicNs, percentile, sleep } from './lib/timing.js';

const spec = {
  instances: { default: 3, help: 'server processes on one Redis' },
  gateways: { default: 30000, help: 'simulated gateways, spread evenly over the instances' },
  unicast: { default: 400, help: 'commands sent to one random gateway each (half through its own instance)' },
  'unicast-interval-ms': { default: 10, help: 'pause between unicast commands' },
  'during-failover': {
    default: 300,
    help: "commands sent to the killed instance's gateways right after the kill",
  },
  'redelivery-wait-s': {
    default: 120,
    help: 'how long to wait for those commands before counting them lost',
  },
  'reconnect-jitter-ms': { default: 2000, help: "a gateway's random pause before it reconnects elsewhere" },
  'source-addresses': { default: 8, help: 'source addresses 127.0.0.2 … used round-robin' },
  'connect-concurrency': { default: 128, help: 'connections being opened at once, per fleet process' },
  'redis-url': {
    default: process.env.BACKHAUL_REDIS_URL ?? 'redis://127.0.0.1:6379',
    help: 'the shared Redis',
  },
  'heartbeat-ms': { default: 15000, help: 'server heartbeat interval' },
} as const;

const options = parseOptions('cluster', spec);
const keyPrefix = `bench-cluster-${process.pid}:`;
const servers: ServerProcess[] = [];
const workers: Child<{ connectS: number }>[] = [];
/** First arrival of each command (monotonic ns), whichever fleet process saw it. */
const arrivals = new Map<string, { gateway: number; ns: bigint }>();
const waiters = new Map<string, () => void>();

/** The file limit bounds sockets per process: each server holds its share, and after a kill more. */
const FILE_LIMIT = 20000;
const storageRoot = (instance: number) => join(dataDir(), `cluster-${process.pid}-${instance}`);

runMain(
  'cluster',
  async () => {
    const { instances, gateways } = options;
    const share = Math.ceil(gateways / instances);
    const afterKill = Math.ceil(gateways / (instances - 1));
    if (afterKill + 500 > FILE_LIMIT)
      throw new Error(
        `${gateways} gateways over ${instances} instances leave ${afterKill} per survivor: over the file limit`,
      );

    for (let i = 0; i < instances; i++) {
      const server = await startServerProcess(
        {
          host: '127.0.0.1',
          port: 0,
          storage: { kind: 'fs', root: storageRoot(i) },
          gateways,
          heartbeatMs: options['heartbeat-ms'],
          redis: { url: options['redis-url'], keyPrefix },
        },
        { nofile: FILE_LIMIT },
      );
      servers.push(server);
      progress(`instance ${i} at ${server.url} (pid ${server.pid})`);
    }
    const urls = servers.map((server) => server.url);
    const sourceAddresses = Array.from({ length: options['source-addresses'] }, (_, i) => `127.0.0.${i + 2}`);

    // Gateway g streams first from instance ⌊g / share⌋, then from the next ones in turn.
    const instanceOf = (gateway: number) => Math.floor(gateway / share);
    const connectStart = monotonicNs();
    for (let w = 0; w < instances; w++) {
      const config: FleetWorkerConfig = {
        urls: urls.map((_, k) => urls[(w + k) % instances]!),
        first: w * share,
        count: Math.min(share, gateways - w * share),
        sourceAddresses,
        connectConcurrency: options['connect-concurrency'],
        reconnectJitterMs: options['reconnect-jitter-ms'],
      };
      const worker = spawnTs<{ connectS: number }>('bench/lib/fleet-worker.ts', [JSON.stringify(config)], {
        label: `fleet ${w}`,
        nofile: FILE_LIMIT,
        relayMessages: false,
      });
      worker.onMessage((message) => {
        if (typeof message.delivered !== 'string') return;
        arrivals.set(message.delivered, {
          gateway: message.gateway as number,
          ns: BigInt(message.ns as string),
        });
        waiters.get(message.delivered)?.();
        waiters.delete(message.delivered);
      });
      workers.push(worker);
    }
    const ready = await Promise.all(workers.map((worker) => worker.ready));
    const connectS = Number(monotonicNs() - connectStart) / 1e9;
    progress(`all ${gateways} gateways connected in ${connectS.toFixed(2)} s`, {
      per_fleet_process_s: ready.map((r) => round(r.connectS, 2)),
    });

    const caller = new Agent({ connections: 64, pipelining: 1 });
    const submit = (instance: number, gateway: number) => submitQuery(urls[instance]!, gateway, caller);
    const arrived = (id: string, timeoutMs: number): Promise<boolean> =>
      arrivals.has(id)
        ? Promise.resolve(true)
        : new Promise((resolve) => {
            const timer = setTimeout(() => {
              waiters.delete(id);
              resolve(false);
            }, timeoutMs);
            waiters.set(id, () => {
              clearTimeout(timer);
              resolve(true);
            });
          });

    // Unicast: one command at a time to a random gateway, alternately through the instance that
    // holds its stream and through another one (which must hand it over).
    let seed = 12345;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const same: number[] = [];
    const cross: number[] = [];
    for (let i = 0; i < options.unicast; i++) {
      const gateway = random(gateways);
      const home = instanceOf(gateway);
      const through = i % 2 === 0 ? home : (home + 1 + random(instances - 1)) % instances;
      const sentNs = monotonicNs();
      const id = await submit(through, gateway);
      if (!(await arrived(id, 60_000))) throw new Error(`command ${id} for gateway ${gateway} never arrived`);
      const arrival = arrivals.get(id)!;
      if (arrival.gateway !== gateway)
        throw new Error(`command for gateway ${gateway} reached ${arrival.gateway}`);
      (through === home ? same : cross).push(Number(arrival.ns - sentNs) / 1e6);
      await sleep(options['unicast-interval-ms']);
    }
    const stats = (values: number[]) => ({
      p50: round(percentile(values, 50), 2),
      p99: round(percentile(values, 99), 2),
      max: round(Math.max(...values), 2),
      n: values.length,
    });
    progress('unicast, caller on the instance holding the stream (ms)', stats(same));
    progress('unicast, caller on another instance (ms)', stats(cross));

    // Failover: SIGKILL instance 0; its gateways reconnect to the others. Commands for them are
    // submitted on the survivors at once, while they have no stream anywhere.
    const victim = 0;
    const orphans = Array.from({ length: share }, (_, i) => victim * share + i);
    const killNs = monotonicNs();
    servers[victim]!.child.process.kill('SIGKILL');
    progress(`instance ${victim} SIGKILLed`);
    const sent: string[] = [];
    for (let i = 0; i < options['during-failover']; i++) {
      const survivor = 1 + (i % (instances - 1));
      sent.push(await submit(survivor, orphans[random(orphans.length)]!));
    }
    progress(`${sent.length} commands submitted to its gateways on the survivors`);

    const victimWorker = workers[victim]!;
    const failover = await new Promise<{ lastNs: bigint; disconnects: number }>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the killed instance’s gateways were not all back within 120 s')),
        120_000,
      );
      victimWorker.onMessage((message) => {
        if (message.down !== 0 || Number(message.disconnects) === 0) return;
        clearTimeout(timer);
        resolve({
          lastNs: BigInt(message.lastReconnectNs as string),
          disconnects: Number(message.disconnects),
        });
      });
    });
    const failoverS = Number(failover.lastNs - killNs) / 1e9;
    progress(
      `all ${failover.disconnects} of its gateways streaming again ${failoverS.toFixed(2)} s after the kill`,
    );

    const waited = await Promise.all(sent.map((id) => arrived(id, options['redelivery-wait-s'] * 1000)));
    const lost = waited.filter((ok) => !ok).length;
    const lastArrivalNs = sent.reduce((last, id) => {
      const at = arrivals.get(id)?.ns ?? 0n;
      return at > last ? at : last;
    }, 0n);
    progress(
      `${sent.length - lost} of ${sent.length} arrived; the last ${(Number(lastArrivalNs - killNs) / 1e9).toFixed(2)} s after the kill`,
    );
    await caller.close();
    return {
      bench: 'cluster',
      instances,
      gateways,
      connect_s: round(connectS, 2),
      unicast_p99_ms: stats(same).p99,
      cross_instance_p99_ms: stats(cross).p99,
      failover_s: round(failoverS, 2),
      lost,
      unicast: stats(same),
      cross_instance: stats(cross),
      during_failover: {
        sent: sent.length,
        arrived: sent.length - lost,
        last_s: round(Number(lastArrivalNs - killNs) / 1e9, 2),
      },
      reconnected: failover.disconnects,
      ...machine(),
    };
  },
  async () => {
    for (const worker of workers) await worker.stop();
    for (const server of servers) await server.stop();
    for (let i = 0; i < servers.length; i++) await rm(storageRoot(i), { recursive: true, force: true });
    const redis = new Redis(options['redis-url'], { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  },
);
