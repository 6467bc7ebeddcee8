import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { expect } from 'vitest';

/**
 * A real OpenTelemetry SDK registered for one test file, as an embedding service would register
 * one: every span the server and gateway end is kept in memory, to be checked by trace and parent.
 */
export interface SpanRecorder {
  /** The ended spans of one trace. */
  spansOf(traceId: string): ReadableSpan[];
  /** Unregisters the SDK (the API is a no-op again). */
  stop(): void;
}

export function recordSpans(): SpanRecorder {
  const exporter = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return {
    spansOf: (traceId) =>
      exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId),
    stop() {
      trace.disable();
      context.disable();
    },
  };
}

export const named = (spans: ReadableSpan[], name: string) => spans.filter((span) => span.name === name);

/** The one span called `name`; fails the test unless there is exactly one. */
export function one(spans: ReadableSpan[], name: string): ReadableSpan {
  const found = named(spans, name);
  expect(found, name).toHaveLength(1);
  return found[0] as ReadableSpan;
}

export const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
