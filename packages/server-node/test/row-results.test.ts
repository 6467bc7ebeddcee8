import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auth,
  callerToken,
  dispatchedCommand,
  gatewayA,
  gatewayPost,
  getJson,
  openStream,
  startServer,
  submit,
  type TestServer,
} from './helpers.js';

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ rowsByteLimit: 4096 });
});
afterAll(() => t?.close());

const columns = [
  { name: 'id', type: 'int32', nullable: false },
  { name: 'name', type: 'string', nullable: true },
];

describe('§5.3 row batches are kept in order, and the same seq again is accepted and ignored', () => {
  it('returns the rows in seq order from GET result once completed', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'rows');
    // Not finished yet: 409 result-not-ready.
    const early = await getJson(`${t.url}/v1/queries/${id}/result`, callerToken);
    expect(early.response.status).toBe(409);
    expect(early.body.code).toBe('result-not-ready');

    expect((await gatewayPost(t.url, gatewayA.token, id, 'rows', { seq: 1, rows: [[3, 'c']] })).status).toBe(
      204,
    );
    expect(
      (
        await gatewayPost(t.url, gatewayA.token, id, 'rows', {
          seq: 0,
          columns,
          rows: [
            [1, 'a'],
            [2, 'b'],
          ],
        })
      ).status,
    ).toBe(204);
    expect((await gatewayPost(t.url, gatewayA.token, id, 'rows', { seq: 1, rows: [[3, 'c']] })).status).toBe(
      204,
    );
    const completed = await gatewayPost(t.url, gatewayA.token, id, 'complete', {
      kind: 'rows',
      rowCount: 3,
      batchCount: 2,
    });
    expect(completed.status).toBe(200);
    const view = (await completed.json()) as { state: string; result: { kind: string; rowCount: number } };
    expect(view).toMatchObject({ state: 'completed', result: { kind: 'rows', rowCount: 3 } });

    const result = await getJson(`${t.url}/v1/queries/${id}/result`, callerToken);
    expect(result.response.status).toBe(200);
    expect(result.body).toEqual({
      columns,
      rows: [
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ],
    });
    stream.close();
  });

  it('refuses a completion whose counts differ from what was received', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'rows');
    await gatewayPost(t.url, gatewayA.token, id, 'rows', { seq: 0, columns, rows: [[1, 'a']] });
    const response = await gatewayPost(t.url, gatewayA.token, id, 'complete', {
      kind: 'rows',
      rowCount: 5,
      batchCount: 2,
    });
    expect(response.status).toBe(422);
    stream.close();
  });

  it('answers 413 past twice rowsByteLimit of batches for one query', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'rows');
    const big = Array.from({ length: 100 }, (_, i) => [i, 'x'.repeat(40)]);
    const statuses: number[] = [];
    for (let seq = 0; seq < 4; seq++) {
      statuses.push((await gatewayPost(t.url, gatewayA.token, id, 'rows', { seq, rows: big })).status);
    }
    expect(statuses[0]).toBe(204);
    expect(statuses).toContain(413);
    stream.close();
  });

  it('answers 400 problem+json to malformed row JSON', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'rows');
    const response = await gatewayPost(t.url, gatewayA.token, id, 'rows', '{"seq": 0, "rows": [[1,');
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(((await response.json()) as { code: string }).code).toBe('invalid-message');
    const wrongShape = await gatewayPost(t.url, gatewayA.token, id, 'rows', { seq: -1, rows: 'no' });
    expect(wrongShape.status).toBe(400);
    stream.close();
  });
});

describe('§3.3 the caller stream carries state, rows live, progress, and result at the end', () => {
  it('streams rows to a live subscriber and replays kept batches to a late one', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'rows');
    const live = await openStream(`${t.url}/v1/queries/${id}/events`, auth(callerToken));
    expect(live.status).toBe(200);
    const first = await live.nextOf('state');
    expect(JSON.parse(first.data)).toMatchObject({ id, state: 'acknowledged' });

    await gatewayPost(t.url, gatewayA.token, id, 'progress', { stage: 'querying', rows: 0 });
    expect(JSON.parse((await live.nextOf('progress')).data)).toMatchObject({ stage: 'querying' });
    await gatewayPost(t.url, gatewayA.token, id, 'rows', { seq: 0, columns, rows: [[1, 'a']] });
    const rows = await live.nextOf('rows');
    expect(JSON.parse(rows.data)).toEqual({ seq: 0, columns, rows: [[1, 'a']] });

    const late = await openStream(`${t.url}/v1/queries/${id}/events`, auth(callerToken));
    expect(JSON.parse((await late.next()).data)).toMatchObject({ id, state: 'running' });
    expect(JSON.parse((await late.next()).data)).toMatchObject({ seq: 0 });

    await gatewayPost(t.url, gatewayA.token, id, 'rows', { seq: 1, rows: [[2, 'b']] });
    expect(JSON.parse((await live.nextOf('rows')).data)).toMatchObject({ seq: 1 });
    expect(JSON.parse((await late.nextOf('rows')).data)).toMatchObject({ seq: 1 });

    await gatewayPost(t.url, gatewayA.token, id, 'complete', { kind: 'rows', rowCount: 2, batchCount: 2 });
    for (const subscriber of [live, late]) {
      const result = JSON.parse((await subscriber.nextOf('result')).data);
      expect(result).toMatchObject({
        id,
        state: 'completed',
        result: { kind: 'rows', rowCount: 2, columns },
      });
      await expect(subscriber.next(1000)).rejects.toThrow(/ended/);
    }
    stream.close();
  });

  it('sends the final state and result at once to a subscriber of an ended query', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'rows');
    await gatewayPost(t.url, gatewayA.token, id, 'fail', { code: 'query-failed', message: 'syntax error' });
    const subscriber = await openStream(`${t.url}/v1/queries/${id}/events`, auth(callerToken));
    expect(JSON.parse((await subscriber.nextOf('result')).data)).toMatchObject({
      state: 'failed',
      error: { code: 'query-failed', message: 'syntax error' },
    });
    const result = await getJson(`${t.url}/v1/queries/${id}/result`, callerToken);
    expect(result.response.status).toBe(502);
    expect(result.body).toMatchObject({ code: 'query-failed', detail: 'syntax error' });
    stream.close();
  });
});

describe('in-process API', () => {
  it('submitQuery and getQuery work without HTTP', async () => {
    const view = await t.server.submitQuery({ gatewayId: 'gw-b', sql: 'select 1' });
    expect(view).toMatchObject({ gatewayId: 'gw-b', state: 'pending', mode: 'auto', deliveries: 0 });
    expect((await t.server.getQuery(view.id)).id).toBe(view.id);
    await expect(t.server.getQuery('nope')).rejects.toMatchObject({ code: 'not-found' });
    await expect(t.server.submitQuery({ gatewayId: 'gw-x', sql: 'select 1' })).rejects.toMatchObject({
      code: 'not-found',
    });
    const { response } = await submit(t.url, { gatewayId: 'gw-b', sql: 'select 1', mode: 'weird' });
    expect(response.status).toBe(400);
  });
});
