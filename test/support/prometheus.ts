import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './server-processes.js';
import { until } from './until.js';

/**
 * A real Prometheus server (the Debian package `prometheus`) for tests: a generated config that
 * scrapes the given targets every second, storage in a temp dir, and the HTTP query API.
 */

export interface ScrapeTarget {
  job: string;
  /** host:port */
  address: string;
  metricsPath?: string;
  bearerToken?: string;
}

export interface RunningPrometheus {
  url: string;
  /** The scrape config it was started with (docs/operations.md shows the same shape). */
  config: string;
  /** An instant query; each sample's labels and value. */
  query(expression: string): Promise<{ labels: Record<string, string>; value: number }[]>;
  /** One scalar (the sum of the samples; undefined when there are none). */
  value(expression: string): Promise<number | undefined>;
  close(): Promise<void>;
}

/** The binary, from PATH or where the Debian package puts it; undefined when not installed. */
export function findPrometheus(): string | undefined {
  const candidates = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin'].map((dir) =>
    join(dir, 'prometheus'),
  );
  return candidates.find((path) => existsSync(path));
}

export function scrapeConfig(targets: readonly ScrapeTarget[], scrapeInterval = '1s'): string {
  const jobs = targets.map((target) =>
    [
      `  - job_name: ${target.job}`,
      `    metrics_path: ${target.metricsPath ?? '/metrics'}`,
      ...(target.bearerToken
        ? ['    authorization:', '      type: Bearer', `      credentials: ${target.bearerToken}`]
        : []),
      '    static_configs:',
      `      - targets: ['${target.address}']`,
    ].join('\n'),
  );
  return [
    'global:',
    `  scrape_interval: ${scrapeInterval}`,
    `  scrape_timeout: ${scrapeInterval}`,
    'scrape_configs:',
    ...jobs,
    '',
  ].join('\n');
}

export async function startPrometheus(targets: readonly ScrapeTarget[]): Promise<RunningPrometheus> {
  const binary = findPrometheus();
  if (!binary) throw new Error('prometheus is not installed (Debian package `prometheus`)');
  const dir = mkdtempSync(join(tmpdir(), 'backhaul-prometheus-'));
  const config = scrapeConfig(targets);
  writeFileSync(join(dir, 'prometheus.yml'), config);

  // Prometheus takes no port 0, and the free port may be taken before it binds it: try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const output: string[] = [];
    const child = spawn(
      binary,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (piece: Buffer) => output.push(piece.toString()));
    child.stderr?.on('data', (piece: Buffer) => output.push(piece.toString()));
    try {
      await until(
        async () => {
          if (child.exitCode !== null) throw new Error(`prometheus exited: ${output.join('').slice(-2000)}`);
          const response = await fetch(`${url}/-/ready`).catch(() => undefined);
          return response?.status === 200;
        },
        'prometheus to be ready',
        30_000,
      );
    } catch (error) {
      lastError = error;
      await stop(child);
      continue;
    }
    const query = async (expression: string) => {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expression)}`);
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      if (body.status !== 'success' || !body.data) throw new Error(`query ${expression}: ${body.error}`);
      return body.data.result.map((sample) => ({ labels: sample.metric, value: Number(sample.value[1]) }));
    };
    return {
      url,
      config,
      query,
      async value(expression) {
        const samples = await query(expression);
        if (samples.length === 0) return undefined;
        return samples.reduce((sum, sample) => sum + sample.value, 0);
      },
      async close() {
        await stop(child);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
