// npm run bench:server: the bench server alone (Backhaul + the /bench/ routes), for a gateway side
// elsewhere: `npm run bench:transfer -- --server-url=http://<this host>:<port>` on the other machine.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { dataDir } from './lib/dataset.js';
import { oneOf, parseOptions } from './lib/options.js';
import type { ServerConfig } from './lib/server-main.js';
import { startS3rver } from './lib/storage.js';

const options = parseOptions('server', {
  host: { default: '0.0.0.0', help: 'address to listen on' },
  port: { default: 8787, help: 'port' },
  storage: { default: 'fs', help: 'fs | s3 (s3rver started here)' },
  gateways: { default: 1, help: 'gateway credentials to accept (gw-bench, gw-bench-1, …)' },
});
const storage = oneOf('storage', options.storage, ['fs', 's3'] as const);
const s3 = storage === 's3' ? await startS3rver(join(dataDir(), `s3rver-${process.pid}`)) : undefined;
const config: ServerConfig = {
  host: options.host,
  port: options.port,
  storage: s3
    ? { kind: 's3', s3: s3.config }
    : { kind: 'fs', root: join(dataDir(), `storage-${process.pid}`) },
  gateways: options.gateways,
};
// server-main exits on SIGTERM/SIGINT after closing the server: remove what this run stored.
process.once('exit', () => {
  s3?.child.process.kill('SIGKILL');
  rmSync(config.storage.kind === 'fs' ? config.storage.root! : join(dataDir(), `s3rver-${process.pid}`), {
    recursive: true,
    force: true,
  });
});
// server-main reads its configuration from argv[2], as when a bench spawns it.
process.argv[2] = JSON.stringify(config);
await import('./lib/server-main.js');
