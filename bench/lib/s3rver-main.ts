// Child process: s3rver on 127.0.0.1 (of its network namespace), bucket backhaul-bench.
import S3rver from 's3rver';
import { announceReady, childConfig, onTerminate } from './spawn.js';

const { dir, port } = childConfig<{ dir: string; port: number }>();
const server = new S3rver({
  port,
  address: '127.0.0.1',
  silent: true,
  directory: dir,
  configureBuckets: [{ name: 'backhaul-bench' }],
});
const address = await server.run();
onTerminate(() => server.close());
announceReady({ port: address.port, pid: process.pid });
