import { timingSafeEqual } from 'node:crypto';
import { BackhaulError, type CommandStore, failedProbes, notReady, type ObjectStorage } from '@backhaul/core';
import type { Registry } from 'prom-client';
import { bearerToken, sendJson } from './http-io.js';
import type { Route } from './router.js';

export interface OperationsOptions {
  registry: Registry;
  /** When set, `GET /metrics` wants `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  store: CommandStore;
  storage: ObjectStorage;
  /** How long each readiness probe may take before it counts as failed. */
  probeTimeoutMs: number;
  /** True once `drain()` began: the load balancer should stop sending this instance new work. */
  draining(): boolean;
}

/** Looked up by the readiness probes: reading a key that does not exist is the cheapest round trip. */
const PROBE_ID = 'backhaul-readiness-probe';

/**
 * What an orchestrator and Prometheus ask (docs/operations.md): `/healthz` (the process answers),
 * `/readyz` (not draining, and the command store and object storage answer) and `/metrics`. Health needs no token and
 * says nothing secret: a failed probe is named, its error is not (it may carry a host or a key).
 */
export function operationsRoutes(options: OperationsOptions): Route[] {
  const { registry, metricsToken } = options;
  const expected = metricsToken === undefined ? undefined : Buffer.from(metricsToken);
  return [
    {
      method: 'GET',
      pattern: /^\/healthz$/,
      async handle({ res }) {
        sendJson(res, 200, { status: 'ok' });
      },
    },
    {
      method: 'GET',
      pattern: /^\/readyz$/,
      async handle({ res }) {
        if (options.draining()) throw notReady(['draining']);
        const probes = {
          store: () => options.store.get(PROBE_ID),
          storage: () => options.storage.head(PROBE_ID),
        };
        const failed = await failedProbes(probes, options.probeTimeoutMs);
        if (failed.length > 0) throw notReady(failed);
        sendJson(res, 200, { status: 'ready', checks: Object.keys(probes) });
      },
    },
    {
      method: 'GET',
      pattern: /^\/metrics$/,
      async handle({ req, res }) {
        if (expected) {
          const given = Buffer.from(bearerToken(req) ?? '');
          if (given.length !== expected.length || !timingSafeEqual(given, expected))
            throw new BackhaulError('unauthorized', 'GET /metrics wants the metrics bearer token');
        }
        const body = await registry.metrics();
        res.writeHead(200, {
          'content-type': registry.contentType,
          'content-length': Buffer.byteLength(body),
          'cache-control': 'no-store',
        });
        res.end(body);
      },
    },
  ];
}
