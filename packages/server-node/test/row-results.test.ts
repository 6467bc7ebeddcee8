import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auth,
  callerToken,
  dispatchedCommand,
  type EventStream,
  gatewayA,
  gatewayPost,
  getJson,
  openStream,
  putChunk,
  randomBytesOf,
  startServer,
  submit,
  type TestServer,
  xxhash,
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

/** The events of a caller stream up to and including the first `last`, progress left out. */
async function eventsUntil(stream: EventStream, last: string) {
  const events: { event?: string; data: string }[] = [];
  for (;;) {
    const message = await stream.next();
    if (message.event === 'progress') continue;
    events.push(message);
    if (message.event === last) return events;
  }
}

describe('§3.9 an auto query sends rows live, then switches to a file at its first chunk', () => {
  /** Two live batches (3 rows), then chunk 0 of a one-chunk "file": the switch. */
  async function switchedAuto() {
    const { id, stream } = await dispatchedCommand(t.url, 'auto');
    const live = await openStream(`${t.url}/v1/queries/${id}/events`, auth(callerToken));
    await live.nextOf('state');
    const batches = [
      {
        seq: 0,
        columns,
        rows: [
          [1, 'a'],
          [2, 'b'],
        ],
      },
      { seq: 1, rows: [[3, 'c']] },
    ];
    for (const batch of batches) {
      expect((await gatewayPost(t.url, gatewayA.token, id, 'rows', batch)).status).toBe(204);
    }
    const file = randomBytesOf(300, 7);
    expect((await putChunk(t.url, gatewayA.token, id, 0, file)).status).toBe(201);
    const completion = {
      kind: 'file',
      format: 'parquet',
      size: file.length,
      checksum: await xxhash(file),
      chunkCount: 1,
    };
    return { id, stream, live, batches, completion };
  }

  it('tells callers of the switch after the live rows, takes no new batch after it, and ends with the whole file', async () => {
    const { id, stream, live, batches, completion } = await switchedAuto();
    // The state event of `running` comes with the first batch's progress; the rows and the switch in order.
    const told = (await eventsUntil(live, 'switched')).filter((m) => m.event !== 'state');
    expect(told.map((m) => m.event)).toEqual(['rows', 'rows', 'switched']);
    expect(told.slice(0, 2).map((m) => JSON.parse(m.data))).toEqual(batches);
    expect(JSON.parse(told[2]!.data)).toMatchObject({ id, state: 'running', mode: 'auto', liveRows: 3 });
    expect((await getJson(`${t.url}/v1/queries/${id}`, callerToken)).body).toMatchObject({ liveRows: 3 });

    // A batch already held (a gateway running the command again) is still accepted and ignored;
    // a new one would be a row after the callers were told the live rows are over.
    expect((await gatewayPost(t.url, gatewayA.token, id, 'rows', batches[1])).status).toBe(204);
    const late = await gatewayPost(t.url, gatewayA.token, id, 'rows', { seq: 2, rows: [[4, 'd']] });
    expect(late.status).toBe(409);
    expect(await late.json()).toMatchObject({ code: 'invalid-state', liveRows: 3 });

    const done = await gatewayPost(t.url, gatewayA.token, id, 'complete', { ...completion, rowCount: 5 });
    expect(done.status).toBe(200);
    const ending = await eventsUntil(live, 'result');
    expect(ending.map((m) => m.event)).toEqual(['state', 'result']);
    expect(JSON.parse(ending[1]!.data)).toMatchObject({
      state: 'completed',
      liveRows: 3,
      result: { kind: 'file', rowCount: 5, size: 300 },
    });

    // A follower that comes later reads the same story: state, the live rows, the switch, the result.
    const replay = await openStream(`${t.url}/v1/queries/${id}/events`, auth(callerToken));
    expect((await eventsUntil(replay, 'result')).map((m) => m.event)).toEqual([
      'state',
      'rows',
      'rows',
      'switched',
      'result',
    ]);
    const resultLink = await getJson(`${t.url}/v1/queries/${id}/result`, callerToken);
    expect(resultLink.response.status).toBe(303);
    stream.close();
  });

  it('refuses a file that holds fewer rows than were sent live (422), and the query fails', async () => {
    const { id, stream, completion } = await switchedAuto();
    const done = await gatewayPost(t.url, gatewayA.token, id, 'complete', { ...completion, rowCount: 2 });
    expect(done.status).toBe(422);
    expect(await done.json()).toMatchObject({ code: 'file-incomplete' });
    expect((await getJson(`${t.url}/v1/queries/${id}`, callerToken)).body).toMatchObject({
      state: 'failed',
      liveRows: 3,
    });
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
