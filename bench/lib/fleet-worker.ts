// Child process of bench:cluster: a share of the simulated gateways (bench/lib/sse-fleet.ts), in a
// process of its own because one process cannot hold 30,000 sockets under this machine's file
// limit. It reports as JSON lines: ready (with its connect time), each first arrival of a command,
// and how many of its gateways are without a stream whenever that changes.

import { announceReady, childConfig, onTerminate } from './spawn.js';
import { Fleet } from './sse-fleet.js';
import { now } from './timing.js';
import { gatewayToken } from './tokens.js';

export interface FleetWorkerConfig {
  /** The server these gateways stream from first, then the others in turn when it goes away. */
  urls: string[];
  first: number;
  count: number;
  sourceAddresses: string[];
  connectConcurrency: number;
  reconnectJitterMs: number;
}

const config = childConfig<FleetWorkerConfig>();
const emit = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`);
let repeats = 0;
const fleet = new Fleet({
  serverUrl: config.urls[0]!,
  fallbackUrls: config.urls.slice(1),
  tokens: Array.from({ length: config.count }, (_, i) => gatewayToken(config.first + i)),
  sourceAddresses: config.sourceAddresses,
  connectConcurrency: config.connectConcurrency,
  reconnectJitterMs: config.reconnectJitterMs,
  ack: true,
  onCommand(id, delivery, first) {
    if (!first) {
      repeats++;
      return;
    }
    emit({ delivered: id, gateway: config.first + delivery.gateway, ns: String(delivery.receivedNs) });
  },
});
onTerminate(() => fleet.close());

const start = now();
await fleet.connectAll();
announceReady({ connectS: (now() - start) / 1000, gateways: config.count });

// Streams lost and not yet back: reported on change, with the time the last one came back.
let reported = -1;
setInterval(() => {
  if (fleet.down.size === reported) return;
  reported = fleet.down.size;
  let lastNs = 0n;
  for (const at of fleet.reconnectedAt) if (at !== undefined && at > lastNs) lastNs = at;
  emit({ down: fleet.down.size, disconnects: fleet.disconnects, lastReconnectNs: String(lastNs), repeats });
}, 100);
