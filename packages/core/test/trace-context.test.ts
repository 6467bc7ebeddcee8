import { describe, expect, it } from 'vitest';
import {
  commandLogFields,
  fieldsFirstLogger,
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
  traceHeaders,
  withFields,
} from '../src/index.js';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const spanId = '00f067aa0ba902b7';

describe('parseTraceparent (W3C Trace Context)', () => {
  it('reads version 00 with its flags, and keeps a tracestate that came with it', () => {
    expect(parseTraceparent(`00-${traceId}-${spanId}-01`, 'a=1,b=2')).toEqual({
      traceId,
      spanId,
      flags: 1,
      tracestate: 'a=1,b=2',
    });
    expect(parseTraceparent(`00-${traceId}-${spanId}-00`)).toEqual({ traceId, spanId, flags: 0 });
    // Several tracestate headers are one list.
    expect(parseTraceparent(`00-${traceId}-${spanId}-01`, ['a=1', 'b=2'])?.tracestate).toBe('a=1,b=2');
  });

  it.each([
    ['an all-zero trace ID', `00-${'0'.repeat(32)}-${spanId}-01`],
    ['an all-zero parent ID', `00-${traceId}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${traceId.toUpperCase()}-${spanId}-01`],
    ['version ff', `ff-${traceId}-${spanId}-01`],
    ['version 00 with more after the flags', `00-${traceId}-${spanId}-01-extra`],
    ['a short trace ID', `00-${traceId.slice(1)}-${spanId}-01`],
    ['a long parent ID', `00-${traceId}-${spanId}0-01`],
    ['a missing flags field', `00-${traceId}-${spanId}`],
    ['non-hex flags', `00-${traceId}-${spanId}-0x`],
    ['garbage', 'not a traceparent'],
    ['an empty header', ''],
  ])('ignores %s', (_what, header) => {
    expect(parseTraceparent(header, 'a=1')).toBeUndefined();
  });

  it('ignores two traceparent headers and an absent one', () => {
    expect(parseTraceparent([`00-${traceId}-${spanId}-01`, `00-${traceId}-${spanId}-01`])).toBeUndefined();
    expect(parseTraceparent(undefined)).toBeUndefined();
  });

  it('reads a later version by its first four fields, as forward-compatible parsers must', () => {
    expect(parseTraceparent(`01-${traceId}-${spanId}-03-what-comes-next`)).toEqual({
      traceId,
      spanId,
      flags: 3,
    });
  });

  it('drops a tracestate that is not printable ASCII, keeping the traceparent', () => {
    expect(parseTraceparent(`00-${traceId}-${spanId}-01`, 'a=\u00e9')).toEqual({ traceId, spanId, flags: 1 });
  });

  it('formats what it parses, back to the same header', () => {
    const header = `00-${traceId}-${spanId}-01`;
    const parsed = parseTraceparent(header);
    expect(parsed && formatTraceparent(parsed)).toBe(header);
    expect(traceHeaders({ traceId, spanId, flags: 0, tracestate: 'a=1' })).toEqual({
      traceparent: `00-${traceId}-${spanId}-00`,
      tracestate: 'a=1',
    });
    expect(traceHeaders(undefined)).toEqual({});
  });

  it('makes new IDs that parse as valid', () => {
    const fresh = `00-${newTraceId()}-${newSpanId()}-00`;
    expect(parseTraceparent(fresh)).toBeDefined();
    expect(newTraceId()).not.toBe(newTraceId());
  });
});

describe('log fields', () => {
  it('names the command, its gateway and its trace', () => {
    expect(commandLogFields({ id: 'c1', traceparent: `00-${traceId}-${spanId}-01` }, 'gw')).toEqual({
      commandId: 'c1',
      gatewayId: 'gw',
      traceId,
    });
    expect(commandLogFields({ id: 'c1' }, undefined)).toEqual({ commandId: 'c1' });
  });

  it('withFields adds them to every line; fieldsFirstLogger hands pino its (fields, message) order', () => {
    const calls: unknown[][] = [];
    const pinoLike = {
      info: (...args: unknown[]) => calls.push(['info', ...args]),
      warn: (...args: unknown[]) => calls.push(['warn', ...args]),
      error: (...args: unknown[]) => calls.push(['error', ...args]),
    };
    const logger = withFields(fieldsFirstLogger(pinoLike), { commandId: 'c1' });
    logger.info('sent', { delivery: 2 });
    logger.warn('slow');
    logger.error('failed', { commandId: 'own' });
    expect(calls).toEqual([
      ['info', { commandId: 'c1', delivery: 2 }, 'sent'],
      ['warn', { commandId: 'c1' }, 'slow'],
      ['error', { commandId: 'own' }, 'failed'],
    ]);
  });
});
