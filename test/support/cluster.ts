import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { probeService } from '@backhaul/core/testing';
import { type ReadyProcess, startReadyProcess } from './ready-process.js';
import { freePort } from './server-processes.js';
import { until } from './until.js';

/**
 * A Backhaul cluster as it is deployed: N reference servers (examples/src/server.ts, each its own
 * process) on one Redis and one S3 bucket, behind a load balancer in round-robin with no
 * stickiness. Every caller and gateway request goes through the proxy, so consecutive requests of
 * one upload or one caller land on different instances.
 */
export interface Cluster {
  /** The load balancer: the only address callers and gateways are given. */
  url: string;
  instances: ClusterInstance[];
  /** Requests each instance has answered, from the load balancer's own counters. */
  requestsPerInstance(): Promise<number[]>;
  stop(): Promise<void>;
}

export interface ClusterInstance {
  url: string;
  process: ReadyProcess<{ ready: string; url: string }>;
  /** SIGKILL, then start it again on the same port (the load balancer takes it back on its checks). */
  restart(): Promise<void>;
}

export const clusterGateway = { id: 'gw-cluster', token: 'gateway-token-for-the-cluster' };
export const clusterCallerToken = 'caller-token-for-the-cluster';

export const haproxyBinary = await probeService(
  'haproxy',
  async () => {
    await promisify(execFile)('haproxy', ['-v']);
  },
  { at: 'PATH', skipping: 'the cluster suite', hint: 'Install haproxy (apt-get install haproxy)' },
);

export const nginxBinary = await probeService(
  'nginx',
  async () => {
    await promisify(execFile)('nginx', ['-v']);
  },
  {
    at: 'PATH',
    skipping: 'the cluster suite behind nginx',
    hint: 'Install nginx (apt-get install nginx-light)',
  },
);

export interface ClusterOptions {
  instances: number;
  redisUrl: string;
  keyPrefix: string;
  s3: { endpoint: string; bucket: string };
  /** haproxy (default) or nginx, both in round-robin. */
  proxy?: 'haproxy' | 'nginx';
  /** Extra BACKHAUL_* variables for every instance. */
  env?: Record<string, string>;
  log?: boolean;
}

/** The haproxy configuration the suite runs; docs/cluster.md shows the same settings. */
export function haproxyConfig(port: number, statsPort: number, backends: string[]): string {
  return `global
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  # A retried request (connection refused by a dead instance) goes to another instance.
  retries 3
  option redispatch 1
frontend backhaul
  bind 127.0.0.1:${port}
  default_backend instances
backend instances
  balance roundrobin
${backends.map((address, i) => `  server s${i} ${address} check inter 300 fall 2 rise 1`).join('\n')}
frontend stats
  bind 127.0.0.1:${statsPort}
  stats enable
  stats uri /stats
`;
}

/** The nginx configuration of the nginx variant; docs/cluster.md shows the same settings. */
export function nginxConfig(port: number, backends: string[], dir: string): string {
  return `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')};
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'client-body')};
  proxy_temp_path ${join(dir, 'proxy')};
  upstream instances {
${backends.map((address) => `    server ${address} max_fails=1 fail_timeout=2s;`).join('\n')}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 8m;
    location / {
      proxy_pass http://instances;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Server-sent events and streamed uploads pass through unbuffered.
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout;
    }
  }
}
`;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'backhaul-cluster-'));
  const ports = await Promise.all(Array.from({ length: options.instances }, () => freePort()));
  const proxyPort = await freePort();
  const statsPort = await freePort();
  const url = `http://127.0.0.1:${proxyPort}`;
  const env = (port: number): Record<string, string> => ({
    BACKHAUL_HOST: '127.0.0.1',
    BACKHAUL_PORT: String(port),
    BACKHAUL_PUBLIC_URL: url,
    BACKHAUL_STORE: 'redis',
    BACKHAUL_REDIS_URL: options.redisUrl,
    BACKHAUL_REDIS_KEY_PREFIX: options.keyPrefix,
    BACKHAUL_STORAGE: 's3',
    BACKHAUL_S3_BUCKET: options.s3.bucket,
    BACKHAUL_S3_ENDPOINT: options.s3.endpoint,
    BACKHAUL_S3_ACCESS_KEY_ID: 'S3RVER',
    BACKHAUL_S3_SECRET_ACCESS_KEY: 'S3RVER',
    BACKHAUL_S3_FORCE_PATH_STYLE: 'true',
    BACKHAUL_S3_PREFIX: options.keyPrefix.replace(/[^a-z0-9-]/gi, '-'),
    BACKHAUL_GATEWAYS: `${clusterGateway.id}:${clusterGateway.token}`,
    BACKHAUL_CALLER_TOKENS: clusterCallerToken,
    BACKHAUL_DOWNLOAD_SECRET: 'download-secret-shared-by-the-cluster',
    ...options.env,
  });
  const startInstance = (port: number) =>
    startReadyProcess<{ ready: string; url: string }>({
      script: new URL('../../examples/src/server.ts', import.meta.url),
      env: env(port),
      log: options.log,
      readyTimeoutMs: 30_000,
    });
  const instances: ClusterInstance[] = [];
  const proxies: ReturnType<typeof spawn>[] = [];
  const stop = async () => {
    for (const proxy of proxies) proxy.kill('SIGKILL');
    await Promise.all(instances.map((instance) => instance.process.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const instance: ClusterInstance = {
        url: `http://127.0.0.1:${port}`,
        process: await startInstance(port),
        async restart() {
          await instance.process.kill();
          instance.process = await startInstance(port);
        },
      };
      instances.push(instance);
    }
    const backends = ports.map((port) => `127.0.0.1:${port}`);
    const proxy = options.proxy ?? 'haproxy';
    const config = join(dir, `${proxy}.cfg`);
    await writeFile(
      config,
      proxy === 'haproxy'
        ? haproxyConfig(proxyPort, statsPort, backends)
        : nginxConfig(proxyPort, backends, dir),
    );
    const child =
      proxy === 'haproxy'
        ? spawn('haproxy', ['-f', config, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] })
        : spawn('nginx', ['-c', config, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    proxies.push(child);
    let proxyErrors = '';
    child.stderr?.on('data', (text: Buffer) => {
      proxyErrors += text.toString();
    });
    // Up when an instance answers through it (401: the server itself, refusing a missing token).
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`${proxy} exited: ${proxyErrors}`);
        return (await fetch(`${url}/v1/queries/none`).catch(() => undefined))?.status === 401;
      },
      `${proxy} to pass requests to the instances`,
      15_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    instances,
    async requestsPerInstance() {
      if ((options.proxy ?? 'haproxy') !== 'haproxy')
        throw new Error('per-instance counts come from haproxy');
      const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
      const header = csv.split('\n')[0]!.replace(/^# /, '').split(',');
      const name = header.indexOf('svname');
      const total = header.indexOf('req_tot');
      const counts = new Map<string, number>();
      for (const line of csv.split('\n').slice(1)) {
        const fields = line.split(',');
        counts.set(fields[name]!, Number(fields[total]));
      }
      return ports.map((_, i) => counts.get(`s${i}`) ?? 0);
    },
    stop,
  };
}
