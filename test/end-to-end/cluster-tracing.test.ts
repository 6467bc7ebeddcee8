import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QueryView } from '@backhaul/core';
import { createRedisDeployment, type RedisDeployment } from '@backhaul/store-redis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import {
  deleteKeys,
  redisService,
  redisUrl,
  uniqueKeyPrefix,
} from '../../packages/store-redis/test/redis-service.js';
import { callerToken, gatewayId, type Harness, startHarness } from '../support/harness.js';
import { one, parentOf, recordSpans, type SpanRecorder } from '../support/span-recorder.js';

/**
 * The trace context is kept with the command record, so it survives the instance that took the
 * query: submitted on A, the command reaches the gateway streaming from B through Redis (push),
 * and every span, on either instance and on the gateway, is in the caller's trace. Needs Redis;
 * skips loudly without it.
 */

const callerTraceId = 'a3ce929d0e0e47364bf92f3577b34da6';
const callerSpanId = '0ba902b700f067aa';
const HOUR = 3_600_000;

redisService.describe('tracing across server instances on one Redis', () => {
  const keyPrefix = uniqueKeyPrefix();
  let dir: string;
  let recorder: SpanRecorder;
  let deployments: RedisDeployment[] = [];
  let a: Harness;
  let b: Harness;

  beforeAll(async () => {
    recorder = recordSpans();
    dir = mkdtempSync(join(tmpdir(), 'backhaul-cluster-tracing-'));
    const { path } = ensureDemoDatabase(join(dir, 'orders.sqlite'), 1_000);
    deployments = [0, 1].map(() => createRedisDeployment({ url: redisUrl, keyPrefix }));
    // The sweep is an hour away: a command reaches B's gateway only by the push through Redis.
    const instance = (deployment: RedisDeployment, i: number) =>
      startHarness({
        sqlitePath: path,
        server: { ...deployment.serverOptions, sweepIntervalMs: HOUR, instanceId: `instance-${i}` },
      });
    [a, b] = (await Promise.all(deployments.map(instance))) as [Harness, Harness];
    await b.startGateway();
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    for (const deployment of deployments) await deployment.close();
    await deleteKeys(keyPrefix);
    rmSync(dir, { recursive: true, force: true });
    recorder?.stop();
  });

  it('a query submitted on A and run through B is one trace, parented on the caller', async () => {
    const response = await fetch(`${a.url}/v1/queries`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${callerToken}`,
        'content-type': 'application/json',
        traceparent: `00-${callerTraceId}-${callerSpanId}-01`,
      },
      body: JSON.stringify({ gatewayId, sql: 'SELECT id FROM orders ORDER BY id', mode: 'rows' }),
    });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as QueryView;
    const final = await b.client.waitFor(id);
    expect(final).toMatchObject({ state: 'completed', traceId: callerTraceId });

    const spans = recorder.spansOf(callerTraceId);
    const submit = one(spans, 'backhaul.submit');
    expect(parentOf(submit)).toBe(callerSpanId);
    // B sent it (A holds no stream), from the trace context it read back from Redis.
    const dispatch = one(spans, 'backhaul.dispatch');
    expect(parentOf(dispatch)).toBe(submit.spanContext().spanId);
    expect(dispatch.attributes['backhaul.sent']).toBe(true);
    const query = one(spans, 'backhaul.query');
    expect(parentOf(query)).toBe(dispatch.spanContext().spanId);
    expect(parentOf(one(spans, 'backhaul.complete'))).toBe(query.spanContext().spanId);
  });
});
