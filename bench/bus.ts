// npm run bench:bus: cross-instance dispatch latency. Several server processes share one Redis
// (command store, bus, row log); N simulated gateways stream from the last one. Commands are
// submitted alternately to that instance (the single-instance baseline, under the same load) and
// to another one (delivered by the bus: docs/cluster.md), and timed from submit to arrival.

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Agent } from 'undici';
import { submitQuery } from './lib/caller.js';
import { dataDir } from './lib/dataset.js';
import { parseOptions } from './lib/options.js';
import { machine } from './lib/proc.js';
import { progress, round, runMain } from './lib/report.js';
import { type ServerProcess, startServerProcess } from './lib/server-process.js';
import { Fleet } from './lib/sse-fleet.js';
import { now, percentile, sleep } from './lib/timing.js';
import { gatewayToken } from './lib/tokens.js';

const spec = {
  instances: {
    default: 2,
    help: 'server processes on one Redis (2 or 3); the gateways stream from the last',
  },
  gateways: { default: 10000, help: 'simulated gateways' },
  unicast: { default: 500, help: 'commands per path (same instance, across instances)' },
  'unicast-interval-ms': { default: 10, help: 'pause between commands (a steady load, not a burst)' },
  'source-addresses': { default: 8, help: 'source addresses 127.0.0.2 … used round-robin' },
  'connect-concurrency': { default: 256, help: 'connections being opened at once' },
  'redis-url': { default: 'redis://127.0.0.1:6379', help: 'the Redis every instance shares' },
} as const;

const options = parseOptions('bus', spec);
const keyPrefix = `backhaul-bench-bus:${process.pid}:`;
const instances: ServerProcess[] = [];
let fleet: Fleet | undefined;

/** Resolves with the arrival, or undefined after `ms` (a lost command). */
const arrival = (id: string, ms: number) =>
  Promise.race([fleet!.delivered(id), sleep(ms).then(() => undefined)]);

async function deleteKeys(): Promise<void> {
  const redis = new Redis(options['redis-url']);
  try {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (found.length > 0) await redis.unlink(...found);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

runMain(
  'bus',
  async () => {
    const n = options.gateways;
    const count = Math.max(2, options.instances);
    const { execFileSync } = await import('node:child_process');
    const limit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
    if (Number.isFinite(limit) && limit < n + 200) {
      throw new Error(`the open-file limit is ${limit}; run \`ulimit -n ${n + 1000}\` first`);
    }
    // The sweep is an hour away: every command that crosses instances is pushed, never swept.
    const started = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        startServerProcess(
          {
            host: '127.0.0.1',
            port: 0,
            storage: { kind: 'fs', root: join(dataDir(), `storage-bus-${process.pid}-${i}`) },
            gateways: n,
            redis: { url: options['redis-url'], keyPrefix },
            sweepIntervalMs: 3_600_000,
          },
          { nofile: Number.isFinite(limit) ? limit : n + 1000 },
        ),
      ),
    );
    instances.push(...started);
    const holder = started[count - 1]!;
    progress(
      `${count} instances on ${options['redis-url']} prefix ${keyPrefix}; gateways stream from ${holder.url}`,
    );

    fleet = new Fleet({
      serverUrl: holder.url,
      tokens: Array.from({ length: n }, (_, i) => gatewayToken(i)),
      sourceAddresses: Array.from({ length: options['source-addresses'] }, (_, i) => `127.0.0.${i + 2}`),
      connectConcurrency: options['connect-concurrency'],
      ack: true,
    });
    const connectStart = now();
    await fleet.connectAll((connected) => progress(`${connected} connected`));
    const connectS = (now() - connectStart) / 1000;
    progress(`all ${n} gateways connected in ${connectS.toFixed(2)} s`);
    await sleep(1000);

    const caller = new Agent({ connections: 8, pipelining: 1 });
    let seed = 12345;
    const pick = (modulo: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % modulo;
    };
    const same: number[] = [];
    const cross: number[] = [];
    let lost = 0;
    // Alternating, so both paths see the same load and the same moments of the run.
    for (let i = 0; i < options.unicast * 2; i++) {
      const crossing = i % 2 === 1;
      const entry = crossing ? started[pick(count - 1)]! : holder;
      const target = pick(n);
      const sentNs = process.hrtime.bigint();
      const id = await submitQuery(entry.url, target, caller);
      const delivery = await arrival(id, 10_000);
      if (!delivery) {
        lost++;
        continue;
      }
      if (delivery.gateway !== target)
        throw new Error(`command for gateway ${target} reached ${delivery.gateway}`);
      (crossing ? cross : same).push(Number(delivery.receivedNs - sentNs) / 1e6);
      await sleep(options['unicast-interval-ms']);
    }
    await caller.close();
    const summary = (values: number[]) => ({
      p50: round(percentile(values, 50), 2),
      p99: round(percentile(values, 99), 2),
      max: round(Math.max(...values), 2),
    });
    const sameSummary = summary(same);
    const crossSummary = summary(cross);
    progress('same instance, submit → received (ms)', sameSummary);
    progress('across instances, submit → received (ms)', crossSummary);
    return {
      bench: 'bus',
      instances: count,
      gateways: n,
      connect_s: round(connectS),
      same_instance_p99_ms: sameSummary.p99,
      cross_instance_p99_ms: crossSummary.p99,
      same_instance_p50_ms: sameSummary.p50,
      cross_instance_p50_ms: crossSummary.p50,
      same_instance_max_ms: sameSummary.max,
      cross_instance_max_ms: crossSummary.max,
      commands_per_path: options.unicast,
      lost,
      disconnects: fleet.disconnects,
      goal_cross_instance_p99_ms: 50,
      ...machine(),
    };
  },
  async () => {
    await fleet?.close();
    await Promise.all(instances.map((instance) => instance.stop()));
    await Promise.all(
      instances.map((_, i) =>
        rm(join(dataDir(), `storage-bus-${process.pid}-${i}`), { recursive: true, force: true }),
      ),
    );
    await deleteKeys().catch(() => undefined);
  },
);
