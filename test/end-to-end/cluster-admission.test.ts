import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedisAdmissionLedger } from '@backhaul/store-redis';
import { afterEach, expect, it } from 'vitest';
import {
  deleteKeys,
  redisService,
  redisUrl,
  uniqueKeyPrefix,
} from '../../packages/store-redis/test/redis-service.js';
import {
  freePort,
  processCallerToken,
  processGatewayId,
  type ServerProcess,
  startServerProcess,
} from '../support/server-processes.js';
import { until } from '../support/until.js';

/**
 * Admission limits counted across server processes (docs/cluster.md, "Limits and retention"):
 * two servers on one Redis admission ledger, submits spread over both, never more admitted than
 * the class allows; a SIGKILLed server's slots come back once their lease runs out. No gateway is
 * connected, so every admitted query stays pending and keeps its slot for the whole test.
 */

const SMALL = 6;
const LEASE_MS = 1500;

let servers: ServerProcess[] = [];
let dirs: string[] = [];
let prefixes: string[] = [];
afterEach(async () => {
  await Promise.all(servers.map((server) => server.kill()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  for (const prefix of prefixes) await deleteKeys(prefix);
  servers = [];
  dirs = [];
  prefixes = [];
});

async function startCluster(count: number) {
  const prefix = uniqueKeyPrefix();
  prefixes.push(prefix);
  const dir = mkdtempSync(join(tmpdir(), 'backhaul-cluster-admission-'));
  dirs.push(dir);
  servers = await Promise.all(
    Array.from({ length: count }, async () =>
      startServerProcess({
        port: await freePort(),
        prefix,
        storageDir: dir,
        redisUrl,
        admission: { small: SMALL, gatewayShare: 1, callerShare: 1 },
        admissionLeaseMs: LEASE_MS,
      }),
    ),
  );
  return { prefix, servers };
}

/** POST /v1/queries on `url`; the status code. */
async function submit(url: string): Promise<number> {
  const response = await fetch(`${url}/v1/queries`, {
    method: 'POST',
    headers: { authorization: `Bearer ${processCallerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ gatewayId: processGatewayId, sql: 'SELECT 1', mode: 'rows' }),
  });
  await response.arrayBuffer();
  return response.status;
}

/** `count` submits at once, alternating over `urls`: how many were admitted (202) and refused (429) per URL. */
async function burst(urls: string[], count: number) {
  const statuses = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      submit(urls[i % urls.length] as string).then((s) => [i % urls.length, s]),
    ),
  );
  const tally = urls.map(() => ({ admitted: 0, refused: 0, other: 0 }));
  for (const [at, status] of statuses) {
    const entry = tally[at as number] as { admitted: number; refused: number; other: number };
    if (status === 202) entry.admitted++;
    else if (status === 429) entry.refused++;
    else entry.other++;
  }
  return tally;
}

redisService.describe('admission counted across two server processes on one Redis', () => {
  it('never admits more than the class limit across both, and a killed server’s slots come back after the lease', async () => {
    const { prefix } = await startCluster(2);
    const [a, b] = servers as [ServerProcess, ServerProcess];
    // A takes half the slots first, so the kill below has something to give back.
    expect(await burst([a.url], SMALL / 2)).toEqual([{ admitted: SMALL / 2, refused: 0, other: 0 }]);
    const tally = await burst([a.url, b.url], 40);
    const admitted = tally[0]!.admitted + tally[1]!.admitted;
    expect({
      admitted,
      refused: tally[0]!.refused + tally[1]!.refused,
      other: tally[0]!.other + tally[1]!.other,
    }).toEqual({ admitted: SMALL / 2, refused: 40 - SMALL / 2, other: 0 });
    // Another round changes nothing: every slot is held.
    const again = await burst([a.url, b.url], 10);
    expect(again.map((t) => t.admitted)).toEqual([0, 0]);

    // What each server holds, as the shared ledger counts it. A slot held by A is renewed by A
    // while A lives: well past one lease, nothing has come back.
    const ledger = createRedisAdmissionLedger({ url: redisUrl, keyPrefix: prefix, leaseMs: LEASE_MS });
    try {
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 2));
      expect((await ledger.occupancy()).small).toBe(SMALL);
      expect(await burst([b.url], 4)).toEqual([{ admitted: 0, refused: 4, other: 0 }]);

      // A dies without a word: its slots are reclaimed when their lease ends, and B gets exactly those.
      const heldByA = SMALL / 2 + tally[0]!.admitted;
      expect((await a.kill()).signal).toBe('SIGKILL');
      await until(
        async () => (await ledger.occupancy()).small === SMALL - heldByA,
        'the slots of the killed server',
      );
      const after = await burst([b.url], heldByA + 5);
      expect(after).toEqual([{ admitted: heldByA, refused: 5, other: 0 }]);
      expect((await ledger.occupancy()).small).toBe(SMALL);
    } finally {
      await ledger.close();
    }
  });
});
