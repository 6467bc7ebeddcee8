import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createBackhaulServer, type FleetView } from '@backhaul/server-node';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { createFsStorage } from '@backhaul/storage-fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, launchChromium, type RunningChromium } from '../support/chromium.js';
import { callerToken, gatewayId, gatewayToken, type Harness, startHarness } from '../support/harness.js';
import { postgresService, postgresUrl } from '../support/production-services.js';
import { servicesRequired } from '../support/services.js';
import { until } from '../support/until.js';

const chromiumPath = findChromium();
if (!chromiumPath) {
  console.warn(
    servicesRequired
      ? 'chromium is not installed: the fleet page suite FAILS (BACKHAUL_REQUIRE_SERVICES=1)'
      : 'SKIPPED: the fleet page suite needs headless Chromium (apt-get install chromium)',
  );
}

const ADMIN_TOKEN = 'admin-token-for-the-fleet-page-tests';
/** A second gateway the test speaks for by hand: it takes commands and never acknowledges them. */
const MUTE_GATEWAY = 'gw-mute';
const MUTE_TOKEN = 'gateway-token-of-the-mute-gateway';
const ROWS = 120_000;
/** Where the screenshot goes: git-ignored, kept by CI as test output. */
const OUTPUT_DIR = fileURLToPath(new URL('../../test-results/', import.meta.url));

/** The number a table cell shows ("12,288" → 12288); undefined while it shows none. */
async function shownNumber(page: Page, selector: string): Promise<number | undefined> {
  const text =
    (await page
      .locator(selector)
      .textContent({ timeout: 1000 })
      .catch(() => null)) ?? '';
  const digits = text.replace(/[^0-9]/g, '');
  return digits === '' ? undefined : Number(digits);
}

const skip = (!chromiumPath && !servicesRequired) || postgresService.skip;

describe.skipIf(skip)('the fleet page in headless Chromium, over a real gateway and PostgreSQL', () => {
  let harness: Harness;
  let chromium: RunningChromium;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    postgresService.require();
    if (!chromiumPath) throw new Error('chromium is not installed (apt-get install chromium)');
    harness = await startHarness({
      dataSource: () => createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 }),
      extraGateways: [{ id: MUTE_GATEWAY, token: MUTE_TOKEN }],
      // The mute gateway's command is dead-lettered after one unacknowledged delivery.
      delivery: { ackTimeoutMs: 3000, maxRedeliveries: 0 },
      // A heartbeat every 500 ms, so the page has one to show soon.
      server: { adminTokens: [ADMIN_TOKEN], instanceId: 'fleet-test-instance', heartbeatMs: 500 },
    });
    await harness.startGateway({ progressIntervalMs: 100 });
    chromium = await launchChromium(chromiumPath);
    page = await chromium.context.newPage();
    // A script error or a CSP refusal shows up here; the page must cause none.
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`${message.text()} (${message.location().url})`);
    });
  }, 120_000);

  afterAll(async () => {
    await chromium?.close();
    await harness?.close();
  });

  const fleet = async (token: string | undefined) =>
    fetch(`${harness.url}/v1/admin/fleet`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });

  it('serves the page without data, and its data only to an admin token (problem+json otherwise)', async () => {
    const html = await fetch(`${harness.url}/admin/fleet`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await html.text()).not.toContain(gatewayId);

    const anonymous = await fleet(undefined);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toContain('application/problem+json');
    expect(await anonymous.json()).toMatchObject({ status: 401, code: 'unauthorized' });

    const caller = await fleet(callerToken);
    expect(caller.status).toBe(403);
    expect(caller.headers.get('content-type')).toContain('application/problem+json');
    expect(await caller.json()).toMatchObject({ status: 403, code: 'forbidden' });

    const replayByCaller = await fetch(`${harness.url}/v1/admin/dead-letters/some-query/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${callerToken}` },
    });
    expect(replayByCaller.status).toBe(403);

    const replay = (id: string) =>
      fetch(`${harness.url}/v1/admin/dead-letters/${id}/replay`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
    const malformed = await replay('not%20an%20id');
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toContain('application/problem+json');
    expect(await malformed.json()).toMatchObject({ code: 'invalid-message' });
    const unknown = await replay('no-such-query');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'not-found' });

    const admin = await fleet(ADMIN_TOKEN);
    expect(admin.status).toBe(200);
    const view = (await admin.json()) as FleetView;
    expect(view.instanceId).toBe('fleet-test-instance');
    expect(view.gateways.map((gateway) => [gateway.id, gateway.source, gateway.connected])).toEqual([
      [MUTE_GATEWAY, 'configured', false],
      [gatewayId, 'configured', true],
    ]);
  });

  it('asks for the token, then lists gateways, failures and dead letters; Replay runs a dead letter again', async () => {
    await page.goto(`${harness.url}/admin/fleet`);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#sign-in button[type=submit]');
    const gatewayRow = page.locator(`#gateways tr[data-gateway-id="${gatewayId}"]`);
    await gatewayRow.waitFor();
    expect(await gatewayRow.locator('td').nth(2).textContent()).toBe('connected');
    expect(
      await page.locator(`#gateways tr[data-gateway-id="${MUTE_GATEWAY}"] td`).nth(2).textContent(),
    ).toBe('not connected');

    // A failure: PostgreSQL refuses the query, the gateway reports it.
    const failing = await harness.client.submit({ gatewayId, sql: 'SELECT 1 / 0 AS boom', mode: 'rows' });
    const failureRow = page.locator(`#failures tr[data-query-id="${failing.id}"]`);
    await failureRow.waitFor();
    expect(await failureRow.locator('td').nth(3).textContent()).toBe('failed');
    expect(await failureRow.locator('td.message').textContent()).toContain('division by zero');

    // An error message carrying markup is shown as text: no element is made of it.
    const markup = '<img src=x onerror=alert(1)>';
    const hostile = await harness.client.submit({
      gatewayId,
      sql: `SELECT '${markup}'::int AS n`,
      mode: 'rows',
    });
    const hostileMessage = page.locator(`#failures tr[data-query-id="${hostile.id}"] td.message`);
    await hostileMessage.waitFor();
    expect(await hostileMessage.textContent()).toContain(markup);
    expect(await page.locator('#failures img').count()).toBe(0);

    // A dead letter: the mute gateway holds its stream, takes the command and never acks it.
    const mute = new AbortController();
    const stream = await fetch(`${harness.url}/v1/gateway/commands`, {
      headers: { authorization: `Bearer ${MUTE_TOKEN}`, accept: 'text/event-stream' },
      signal: mute.signal,
    });
    expect(stream.status).toBe(200);
    const drained = stream.body?.pipeTo(new WritableStream()).catch(() => undefined);
    const unanswered = await harness.client.submit({
      gatewayId: MUTE_GATEWAY,
      sql: 'SELECT 7 AS answer',
      mode: 'rows',
    });
    const letterRow = page.locator(`#dead-letters tr[data-query-id="${unanswered.id}"]`);
    await letterRow.waitFor({ timeout: 30_000 });
    expect((await harness.client.get(unanswered.id)).state).toBe('dead-lettered');
    expect(await letterRow.locator('td.message').textContent()).toContain('no delivery ack');

    // The mute gateway is replaced by a real one; Replay submits the query again, for its caller.
    mute.abort();
    await drained;
    await harness.startGateway({ token: MUTE_TOKEN });
    await letterRow.locator('button[data-replay]').click();
    const replayedAs = letterRow.locator('td.action code');
    await replayedAs.waitFor();
    const replayId = (await replayedAs.textContent()) ?? '';
    expect(replayId).not.toBe(unanswered.id);
    const replay = await harness.client.waitFor(replayId);
    expect(replay.state).toBe('completed');
    expect((await harness.client.rows(replayId)).rows).toEqual([[7]]);

    // A second replay (another click, another operator) answers the same query: it runs once.
    const again = await fetch(`${harness.url}/v1/admin/dead-letters/${unanswered.id}/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { id: string }).id).toBe(replayId);

    // Only a dead letter can be replayed.
    const notDead = await fetch(`${harness.url}/v1/admin/dead-letters/${replayId}/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(notDead.status).toBe(409);
    expect(notDead.headers.get('content-type')).toContain('application/problem+json');
  }, 90_000);

  it('works under a base path; a wrong token is refused and asked for again', async () => {
    const mounted = createBackhaulServer({
      storage: createFsStorage({ root: harness.storageRoot }),
      gateways: [{ id: gatewayId, token: gatewayToken }],
      callerTokens: [],
      adminTokens: [ADMIN_TOKEN],
      basePath: '/backhaul',
    });
    const { url } = await mounted.listen(0, '127.0.0.1');
    const tab = await chromium.context.newPage();
    try {
      expect(url.endsWith('/backhaul')).toBe(true);
      await tab.goto(`${url}/admin/fleet`);
      await tab.fill('#token', 'not-an-admin-token');
      await tab.click('#sign-in button[type=submit]');
      await tab.locator('#status.error').waitFor();
      expect(await tab.locator('#sign-in').isVisible()).toBe(true);
      expect(await tab.locator('#fleet').isVisible()).toBe(false);
      // The refused token was not kept.
      expect(await tab.evaluate('sessionStorage.length')).toBe(0);

      await tab.fill('#token', ADMIN_TOKEN);
      await tab.click('#sign-in button[type=submit]');
      // The script and the data were found relative to the page, under /backhaul.
      const row = tab.locator(`#gateways tr[data-gateway-id="${gatewayId}"]`);
      await row.waitFor();
      expect(await row.locator('td').nth(2).textContent()).toBe('not connected');
      expect(await tab.locator('#sign-in').isVisible()).toBe(false);
    } finally {
      await tab.close();
      await mounted.close();
    }
  });

  it('shows a running file query’s progress move, then takes a screenshot', async () => {
    // Slow enough to watch: PostgreSQL sleeps 0.1 s every 1,000 rows, about 12 s in all.
    const running = await harness.client.submit({
      gatewayId,
      sql: `SELECT g AS n, md5(g::text) AS digest,
              CASE WHEN g % 1000 = 0 THEN length(pg_sleep(0.1)::text) ELSE 0 END AS pause
            FROM generate_series(1, ${ROWS}) AS g`,
      mode: 'file',
    });
    const rowsCell = `#queries tr[data-query-id="${running.id}"] td.rows`;
    const first = await until(async () => {
      const shown = await shownNumber(page, rowsCell);
      return shown !== undefined && shown > 0 && shown < ROWS ? shown : undefined;
    }, 'the page to show the query’s first rows');
    const later = await until(async () => {
      const shown = await shownNumber(page, rowsCell);
      return shown !== undefined && shown > first ? shown : undefined;
    }, 'the page to show the query’s rows grow');
    expect(later).toBeGreaterThan(first);
    expect(await page.locator(`#queries tr[data-query-id="${running.id}"] td`).nth(4).textContent()).toBe(
      'file',
    );

    mkdirSync(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: `${OUTPUT_DIR}fleet-page.png`, fullPage: true });

    const done = await harness.client.waitFor(running.id);
    expect(done.state).toBe('completed');
    expect(done.result?.rowCount).toBe(ROWS);
    // Once ended it leaves the in-flight table.
    await page.locator(`#queries tr[data-query-id="${running.id}"]`).waitFor({ state: 'detached' });
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
