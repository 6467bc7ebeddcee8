import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger, QueryView } from '@backhaul/core';
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { callerToken, gatewayId, type Harness, startHarness } from '../support/harness.js';
import { named, one, parentOf, recordSpans, type SpanRecorder } from '../support/span-recorder.js';
import { until } from '../support/until.js';

/**
 * One query is one trace (docs/operations.md, "Tracing and logs"): with a real OpenTelemetry SDK
 * registered, the caller's `traceparent` is the parent of the server's submit span, the command
 * carries the trace to the gateway, and every answer the gateway sends names its own span, so the
 * server's answer spans are children of the gateway's. The log lines about the command carry the
 * same trace ID.
 */

const callerTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerSpanId = '00f067aa0ba902b7';
const traceparent = `00-${callerTraceId}-${callerSpanId}-01`;

interface LogLine {
  level: string;
  message: string;
  data: Record<string, unknown>;
}

describe('tracing: one query is one trace across caller, server and gateway', () => {
  let dir: string;
  let harness: Harness;
  let recorder: SpanRecorder;
  const lines: LogLine[] = [];
  const recording = (level: string) => (message: string, data?: object) =>
    lines.push({ level, message, data: { ...data } as Record<string, unknown> });
  const logger: Logger = { info: recording('info'), warn: recording('warn'), error: recording('error') };

  beforeAll(async () => {
    recorder = recordSpans();
    dir = mkdtempSync(join(tmpdir(), 'backhaul-tracing-'));
    const { path } = ensureDemoDatabase(join(dir, 'orders.sqlite'), 5_000);
    // A small chunk size: the file query below is uploaded in several chunks, each a span.
    harness = await startHarness({ sqlitePath: path, server: { logger, chunkSize: 64 * 1024 } });
    await harness.startGateway({ logger });
  });

  afterAll(async () => {
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
    recorder?.stop();
  });

  const submit = async (body: object, headers: Record<string, string>): Promise<QueryView> => {
    const response = await fetch(`${harness.url}/v1/queries`, {
      method: 'POST',
      headers: { authorization: `Bearer ${callerToken}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ gatewayId, ...body }),
    });
    expect(response.status).toBe(202);
    return (await response.json()) as QueryView;
  };

  const spansOf = (traceId: string) => recorder.spansOf(traceId);

  it('file mode: submit → dispatch → receive/query → upload → chunks, all in the caller’s trace', async () => {
    const submitted = await submit(
      { sql: 'SELECT * FROM orders ORDER BY id', mode: 'file' },
      { traceparent, tracestate: 'vendor=opaque' },
    );
    expect(submitted.traceId).toBe(callerTraceId);
    const final = await harness.client.waitFor(submitted.id);
    expect(final.state).toBe('completed');
    expect(final.traceId).toBe(callerTraceId);

    const spans = spansOf(callerTraceId);
    const submitSpan = one(spans, 'backhaul.submit');
    expect(parentOf(submitSpan)).toBe(callerSpanId);
    expect(submitSpan.attributes['backhaul.command.id']).toBe(submitted.id);
    const dispatch = one(spans, 'backhaul.dispatch');
    expect(parentOf(dispatch)).toBe(submitSpan.spanContext().spanId);
    const receive = one(spans, 'backhaul.receive');
    expect(parentOf(receive)).toBe(dispatch.spanContext().spanId);
    const query = one(spans, 'backhaul.query');
    expect(parentOf(query)).toBe(dispatch.spanContext().spanId);
    expect(query.instrumentationScope.name).toBe('@backhaul/gateway-node');
    const upload = one(spans, 'backhaul.upload');
    expect(parentOf(upload)).toBe(query.spanContext().spanId);

    // The server's answer spans are children of the gateway span each answer was sent from.
    expect(parentOf(one(spans, 'backhaul.ack'))).toBe(receive.spanContext().spanId);
    expect(parentOf(one(spans, 'backhaul.complete'))).toBe(query.spanContext().spanId);
    const chunks = named(spans, 'backhaul.chunk');
    expect(chunks.length).toBe(upload.attributes['backhaul.chunk.count']);
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) {
      expect(parentOf(chunk)).toBe(upload.spanContext().spanId);
      expect(chunk.instrumentationScope.name).toBe('@backhaul/server-node');
      expect(chunk.attributes['http.response.status_code']).toBe(201);
    }
    // The caller's tracestate travels with the trace, unchanged.
    expect(query.spanContext().traceState?.serialize()).toBe('vendor=opaque');

    // Every log line about this command, from either side, names it, its gateway and its trace.
    const about = lines.filter((line) => line.data.commandId === submitted.id);
    expect(about.map((line) => line.message)).toEqual(
      expect.arrayContaining([
        'query accepted',
        'command sent to the gateway',
        'command received',
        'command completed',
      ]),
    );
    for (const line of about) {
      expect(line.data, line.message).toMatchObject({ gatewayId, traceId: callerTraceId });
    }
  });

  it('rows mode: every row batch is a child of the gateway’s query span', async () => {
    const submitted = await submit(
      { sql: 'SELECT id FROM orders ORDER BY id', mode: 'rows' },
      { traceparent },
    );
    const final = await harness.client.waitFor(submitted.id);
    expect(final.state).toBe('completed');
    const spans = spansOf(callerTraceId).filter(
      (span) => span.attributes['backhaul.command.id'] === submitted.id,
    );
    const query = one(spans, 'backhaul.query');
    const rows = named(spans, 'backhaul.rows');
    expect(rows.length).toBeGreaterThan(0);
    for (const batch of rows) expect(parentOf(batch)).toBe(query.spanContext().spanId);
  });

  it('an invalid traceparent is ignored (no 400): the query starts a trace of its own', async () => {
    for (const invalid of [
      `00-${'0'.repeat(32)}-${callerSpanId}-01`,
      `00-${callerTraceId.toUpperCase()}-${callerSpanId}-01`,
      `ff-${callerTraceId}-${callerSpanId}-01`,
      'not a traceparent',
    ]) {
      const submitted = await submit({ sql: 'SELECT 1 AS one', mode: 'rows' }, { traceparent: invalid });
      expect(submitted.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(submitted.traceId).not.toBe(callerTraceId);
      expect(submitted.traceId).not.toBe('0'.repeat(32));
      const final = await harness.client.waitFor(submitted.id);
      expect(final.state).toBe('completed');
      const submitSpan = one(spansOf(submitted.traceId as string), 'backhaul.submit');
      // A root span: no parent at all, rather than the invalid one.
      expect(submitSpan.parentSpanContext).toBeUndefined();
    }
  });

  it('@backhaul/client sends the traceparent it is given, or else the span active in the caller', async () => {
    const given = await harness.client.submit(
      { gatewayId, sql: 'SELECT 3 AS three', mode: 'rows' },
      { traceparent },
    );
    expect(given.traceId).toBe(callerTraceId);
    const tracer = trace.getTracer('calling-service');
    const { caller, view } = await tracer.startActiveSpan('calling.request', async (span) => {
      const submitted = await harness.client.submit({ gatewayId, sql: 'SELECT 4 AS four', mode: 'rows' });
      span.end();
      return { caller: span.spanContext(), view: submitted };
    });
    expect(view.traceId).toBe(caller.traceId);
    expect((await harness.client.waitFor(view.id)).state).toBe('completed');
    expect(parentOf(one(spansOf(caller.traceId), 'backhaul.submit'))).toBe(caller.spanId);
  });

  it('in process, the span active in the embedding service is the parent', async () => {
    const tracer = trace.getTracer('embedding-service');
    const { caller, view } = await tracer.startActiveSpan('embedding.request', async (span) => {
      const submitted = await harness.server.submitQuery({ gatewayId, sql: 'SELECT 2 AS two', mode: 'rows' });
      span.end();
      return { caller: span.spanContext(), view: submitted };
    });
    expect(view.traceId).toBe(caller.traceId);
    // An in-process query is not the HTTP caller's to read: the server is asked directly.
    await until(async () => (await harness.server.getQuery(view.id)).state === 'completed', 'the query ends');
    const spans = spansOf(caller.traceId);
    expect(parentOf(one(spans, 'backhaul.submit'))).toBe(caller.spanId);
    expect(one(spans, 'backhaul.query').spanContext().traceId).toBe(caller.traceId);
  });
});
