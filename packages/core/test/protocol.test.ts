import {
  BackhaulError,
  type Command,
  cancelSchema,
  chunkHeadersSchema,
  chunkIndexSchema,
  commandSchema,
  completionSchema,
  failureSchema,
  helloSchema,
  parseJson,
  parseMessage,
  progressSchema,
  rowBatchSchema,
  submitQuerySchema,
} from '@backhaul/core';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';

/** Runs parseMessage expecting failure; returns the error so tests can check the path it names. */
function rejection(schema: z.ZodType, value: unknown, what = 'message'): BackhaulError {
  try {
    parseMessage(schema, value, what);
  } catch (error) {
    expect(BackhaulError.isInstance(error)).toBe(true);
    const typed = error as BackhaulError;
    expect(typed.code).toBe('invalid-message');
    expect(typed.status).toBe(400);
    return typed;
  }
  return expect.fail(`expected ${JSON.stringify(value)} to be rejected`);
}

const command: Command = {
  v: 1,
  id: '01JD3XK5Q8-cmd',
  type: 'query',
  sql: 'SELECT * FROM items WHERE id > ?',
  params: [10, 'x', true, null],
  mode: 'auto',
  maxRows: 1_000,
  timeoutMs: 60_000,
  rowsByteLimit: 1_048_576,
  issuedAt: 1_700_000_000_000,
  delivery: 1,
};

describe('§4.2 a command event carries a valid commandSchema', () => {
  it('accepts a valid command unchanged', () => {
    expect(parseMessage(commandSchema, command, 'command')).toEqual(command);
    const { maxRows: _m, timeoutMs: _t, ...minimal } = command;
    expect(parseMessage(commandSchema, minimal, 'command')).toEqual(minimal);
  });

  it.each([
    ['v', { v: 2 }],
    ['type', { type: 'delete' }],
    ['sql', { sql: '' }],
    ['params.1', { params: [1, { nested: true }] }],
    ['mode', { mode: 'stream' }],
    ['delivery', { delivery: 0 }],
    ['rowsByteLimit', { rowsByteLimit: 1.5 }],
    ['id', { id: '' }],
  ])('rejects a bad %s and names the path', (path, patch) => {
    const error = rejection(commandSchema, { ...command, ...patch }, 'command');
    expect(error.message).toContain(`Invalid command at ${path}:`);
    expect((error.details?.issues as { path: string }[] | undefined)?.[0]?.path).toBe(path);
  });

  it('rejects a missing field, and values that are not objects', () => {
    const { sql: _sql, ...withoutSql } = command;
    expect(rejection(commandSchema, withoutSql).message).toContain('at sql');
    for (const value of [null, 'command', 42, []])
      expect(rejection(commandSchema, value).message).toMatch(/^Invalid message/);
  });
});

describe('§3.1 submitQuery defaults mode to auto, params to [] and whenBusy to refuse', () => {
  it('fills the defaults', () => {
    expect(parseMessage(submitQuerySchema, { gatewayId: 'gw-1', sql: 'SELECT 1' }, 'query')).toEqual({
      gatewayId: 'gw-1',
      sql: 'SELECT 1',
      mode: 'auto',
      params: [],
      whenBusy: 'refuse',
    });
  });

  it('keeps what the caller chose', () => {
    const parsed = parseMessage(
      submitQuerySchema,
      { gatewayId: 'gw-1', sql: 'SELECT ?', params: ['a'], mode: 'file', maxRows: 5, timeoutMs: 1000 },
      'query',
    );
    expect(parsed).toMatchObject({ mode: 'file', params: ['a'], maxRows: 5, timeoutMs: 1000 });
  });

  it.each([
    ['maxRows', { maxRows: 0 }],
    ['timeoutMs', { timeoutMs: 86_400_001 }],
    ['mode', { mode: 'all' }],
    ['whenBusy', { whenBusy: 'wait' }],
    ['sql', { sql: '' }],
  ])('rejects a bad %s', (path, patch) => {
    expect(rejection(submitQuerySchema, { gatewayId: 'gw-1', sql: 'SELECT 1', ...patch }).message).toContain(
      `at ${path}:`,
    );
  });
});

describe('identifiers are letters, digits and . _ : - only: never a path', () => {
  it.each(['gw-1', 'a', 'tenant.gw_01', 'gw:eu-west-1', '01JD3XK5Q8ZK', 'x'.repeat(128)])(
    'accepts %j',
    (gatewayId) => {
      expect(parseMessage(submitQuerySchema, { gatewayId, sql: 'SELECT 1' }, 'query').gatewayId).toBe(
        gatewayId,
      );
    },
  );

  it.each([
    'a/b',
    '/etc',
    '..',
    '../x',
    'a/../b',
    'a..b',
    'x..',
    '.hidden',
    '-flag',
    'a\\b',
    'a b',
    'é',
    '',
    'x'.repeat(129),
  ])('rejects %j', (gatewayId) => {
    expect(rejection(submitQuerySchema, { gatewayId, sql: 'SELECT 1' }).message).toContain('at gatewayId:');
    expect(rejection(commandSchema, { ...command, id: gatewayId }).message).toContain('at id:');
  });
});

describe('§5.3 row batches: seq, optional columns on batch 0, rows as arrays', () => {
  it('accepts a first batch with columns and fills nullable', () => {
    const batch = parseMessage(
      rowBatchSchema,
      {
        seq: 0,
        columns: [
          { name: 'id', type: 'int64', nullable: false },
          { name: 'note', type: 'string' },
        ],
        rows: [[1, null]],
      },
      'row batch',
    );
    expect(batch.columns).toEqual([
      { name: 'id', type: 'int64', nullable: false },
      { name: 'note', type: 'string', nullable: true },
    ]);
    expect(parseMessage(rowBatchSchema, { seq: 5, rows: [] }, 'row batch')).toEqual({ seq: 5, rows: [] });
  });

  it.each([
    ['seq', { seq: -1, rows: [] }],
    ['seq', { rows: [] }],
    ['rows', { seq: 1 }],
    ['rows.1', { seq: 1, rows: [[1], 'not a row'] }],
    ['columns.0.type', { seq: 0, columns: [{ name: 'id', type: 'uuid' }], rows: [] }],
    ['columns.0.name', { seq: 0, columns: [{ name: '', type: 'int32' }], rows: [] }],
  ])('rejects a bad %s', (path, value) => {
    expect(rejection(rowBatchSchema, value, 'row batch').message).toContain(`at ${path}:`);
  });
});

describe('§5.5 completion is a union on kind: rows or file', () => {
  const file = {
    kind: 'file',
    format: 'parquet',
    size: 1_048_576,
    checksum: '0123456789abcdef',
    rowCount: 10,
    chunkCount: 2,
  };

  it('accepts both kinds', () => {
    expect(
      parseMessage(completionSchema, { kind: 'rows', rowCount: 3, batchCount: 1 }, 'completion'),
    ).toEqual({
      kind: 'rows',
      rowCount: 3,
      batchCount: 1,
    });
    expect(parseMessage(completionSchema, file, 'completion')).toEqual(file);
  });

  it('rejects an unknown kind, a file without its checksum, and a rows completion with file fields only', () => {
    expect(rejection(completionSchema, { kind: 'csv' }).message).toContain('at kind:');
    const { checksum: _c, ...noChecksum } = file;
    expect(rejection(completionSchema, noChecksum).message).toContain('at checksum:');
    expect(rejection(completionSchema, { ...file, checksum: '0123456789ABCDEF' }).message).toContain(
      'at checksum:',
    );
    expect(rejection(completionSchema, { ...file, format: 'csv' }).message).toContain('at format:');
    expect(rejection(completionSchema, { kind: 'rows', size: 10 }).message).toContain('at rowCount:');
  });
});

describe('§6.1 chunk headers: codec, 16 lower-case hex checksum, raw length', () => {
  it('accepts valid headers and reads the length from its header text', () => {
    expect(
      parseMessage(
        chunkHeadersSchema,
        { codec: 'zstd', checksum: 'ef46db3751d8e999', rawLength: '524288' },
        'chunk headers',
      ),
    ).toEqual({ codec: 'zstd', checksum: 'ef46db3751d8e999', rawLength: 524_288 });
  });

  it.each([
    ['upper-case hex', 'EF46DB3751D8E999'],
    ['15 digits', 'f46db3751d8e999'],
    ['17 digits', '0ef46db3751d8e999'],
    ['not hex', 'zf46db3751d8e999'],
    ['a 0x prefix', '0xef46db3751d8e9'],
    ['missing', undefined],
  ])('rejects a checksum with %s', (_what, checksum) => {
    expect(
      rejection(chunkHeadersSchema, { codec: 'identity', checksum, rawLength: '10' }, 'chunk headers')
        .message,
    ).toContain('at checksum:');
  });

  it('rejects a bad raw length or codec', () => {
    const valid = { codec: 'identity', checksum: 'ef46db3751d8e999', rawLength: '10' };
    for (const rawLength of ['-1', '1.5', 'ten', undefined]) {
      expect(rejection(chunkHeadersSchema, { ...valid, rawLength }).message).toContain('at rawLength:');
    }
    expect(rejection(chunkHeadersSchema, { ...valid, codec: '' }).message).toContain('at codec:');
    expect(rejection(chunkHeadersSchema, { ...valid, codec: undefined }).message).toContain('at codec:');
  });

  it('chunk indices are non-negative integers from the path', () => {
    expect(parseMessage(chunkIndexSchema, '7', 'chunk index')).toBe(7);
    for (const index of ['-1', '1.5', 'x', '1000001']) rejection(chunkIndexSchema, index, 'chunk index');
  });
});

describe('§4.1/§5.2/§5.6 hello, progress and failure', () => {
  it('accepts valid messages', () => {
    const hello = {
      v: 1,
      gatewayId: 'gw-1',
      codecs: ['identity', 'zstd'],
      chunkSize: 524_288,
      heartbeatMs: 15_000,
      chunkWindow: 16,
    };
    expect(parseMessage(helloSchema, hello, 'hello')).toEqual(hello);
    expect(parseMessage(progressSchema, { rows: 10, stage: 'uploading' }, 'progress')).toEqual({
      rows: 10,
      stage: 'uploading',
    });
    expect(parseMessage(failureSchema, { code: 'query-failed', message: 'boom' }, 'failure')).toEqual({
      code: 'query-failed',
      message: 'boom',
    });
  });

  it('rejects malformed ones naming the path', () => {
    expect(
      rejection(helloSchema, {
        v: 1,
        gatewayId: 'gw-1',
        codecs: [],
        chunkSize: 1,
        heartbeatMs: 1,
        chunkWindow: 1,
      }).message,
    ).toContain('at codecs:');
    expect(rejection(progressSchema, { stage: 'sleeping' }).message).toContain('at stage:');
    expect(rejection(progressSchema, { rows: -5 }).message).toContain('at rows:');
    expect(rejection(failureSchema, { code: 'x', message: 'y'.repeat(4097) }).message).toContain(
      'at message:',
    );
  });
});

describe('§4.3 a cancel event names one command', () => {
  it('accepts a cancel with and without a reason', () => {
    expect(parseMessage(cancelSchema, { v: 1, id: 'cmd-1' }, 'cancel')).toEqual({ v: 1, id: 'cmd-1' });
    const withReason = { v: 1, id: 'cmd-1', reason: 'cancelled by the caller' };
    expect(parseMessage(cancelSchema, withReason, 'cancel')).toEqual(withReason);
  });

  it('rejects another version, a path-like id and a missing id', () => {
    expect(rejection(cancelSchema, { v: 2, id: 'cmd-1' }).message).toContain('at v');
    expect(rejection(cancelSchema, { v: 1, id: '../etc' }).message).toContain('at id');
    expect(rejection(cancelSchema, { v: 1 }).message).toContain('at id');
    expect(rejection(cancelSchema, { v: 1, id: 'x', reason: 'r'.repeat(1025) }).message).toContain(
      'at reason',
    );
  });
});

describe("parseJson turns a syntax error into 'invalid-message'", () => {
  it('parses valid JSON and rejects broken JSON', () => {
    expect(parseJson('{"seq":1}', 'row batch')).toEqual({ seq: 1 });
    try {
      parseJson('{"seq":', 'row batch');
      expect.fail('expected a rejection');
    } catch (error) {
      expect(BackhaulError.isInstance(error) && error.code).toBe('invalid-message');
      expect((error as Error).message).toBe('row batch is not valid JSON');
    }
  });
});
