import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gateway } from '@backhaul/gateway-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { gatewayId, type Harness, startHarness } from '../support/harness.js';
import { findPrometheus, type RunningPrometheus, startPrometheus } from '../support/prometheus.js';
import { servicesRequired } from '../support/services.js';
import { until } from '../support/until.js';

const installed = findPrometheus() !== undefined;
if (!installed) {
  console.warn(
    servicesRequired
      ? 'prometheus is not installed: the metrics suite FAILS (BACKHAUL_REQUIRE_SERVICES=1)'
      : 'SKIPPED: the metrics suite needs prometheus (apt-get install prometheus)',
  );
}

const ROWS = 20_000;
/** Small chunks, so the file crosses many of them and the per-stage series all have a span. */
const CHUNK_SIZE = 64 * 1024;
const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';

describe.skipIf(!installed && !servicesRequired)(
  'a real Prometheus scrapes the server and the gateway while a query runs end to end',
  () => {
    let dir: string;
    let harness: Harness;
    let gateway: Gateway;
    let prometheus: RunningPrometheus;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'backhaul-metrics-'));
      const dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), ROWS).path;
      harness = await startHarness({
        sqlitePath: dbPath,
        server: { chunkSize: CHUNK_SIZE, metrics: { token: METRICS_TOKEN } },
      });
      gateway = await harness.startGateway({ status: { port: 0 } });
      const serverAddress = new URL(harness.url).host;
      const gatewayAddress = new URL(gateway.statusUrl ?? '').host;
      prometheus = await startPrometheus([
        { job: 'backhaul-server', address: serverAddress, bearerToken: METRICS_TOKEN },
        { job: 'backhaul-gateway', address: gatewayAddress },
      ]);
      // Both targets scraped once before anything happens: the counts below start from zero.
      await until(
        async () => (await prometheus.value('sum(up)')) === 2,
        'both targets to be up in Prometheus',
        60_000,
      );
    }, 120_000);

    afterAll(async () => {
      await prometheus?.close();
      await harness?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('counts the commands, rows, bytes and chunks of a rows query and a file query', async () => {
      const rowsQuery = await harness.client.submit({
        gatewayId,
        sql: 'SELECT id, country FROM orders WHERE id <= 3000 ORDER BY id',
        mode: 'rows',
      });
      expect((await harness.client.waitFor(rowsQuery.id)).state).toBe('completed');
      const fileQuery = await harness.client.submit({
        gatewayId,
        sql: 'SELECT * FROM orders ORDER BY id',
        mode: 'file',
      });
      const file = await harness.client.waitFor(fileQuery.id);
      expect(file.state).toBe('completed');
      if (file.result?.kind !== 'file') throw new Error('expected a file result');
      const size = file.result.size;
      const chunks = Math.ceil(size / CHUNK_SIZE);
      expect(chunks).toBeGreaterThan(4);

      // A chunk PUT with a wrong token: refused, and counted by its reason.
      const refused = await fetch(`${harness.url}/v1/gateway/commands/${fileQuery.id}/chunks/0`, {
        method: 'PUT',
        headers: { authorization: 'Bearer not-a-gateway-token', 'content-type': 'application/octet-stream' },
        body: new Uint8Array(16),
      });
      expect(refused.status).toBe(401);

      // Wait for a scrape that saw every answer: the gateway reports its completion after the server took it.
      await until(
        async () =>
          (await prometheus.value('sum(backhaul_gateway_commands_total{outcome="completed"})')) === 2 &&
          (await prometheus.value('sum(backhaul_server_chunk_refusals_total)')) === 1,
        'Prometheus to scrape both completions',
        60_000,
      );
      const value = (expression: string) => prometheus.value(expression);

      // Server: commands by state, rows and bytes moved.
      expect(await value('sum(backhaul_server_commands_total{state="completed"})')).toBe(2);
      expect(await value('sum(backhaul_server_commands_total{state="pending"})')).toBe(2);
      expect(await value('sum(backhaul_server_commands_total{state="dispatched"})')).toBe(2);
      expect(await value('sum(backhaul_server_commands_total{state="acknowledged"})')).toBe(2);
      expect(await value('sum(backhaul_server_commands_in_flight)')).toBe(0);
      expect(await value('backhaul_server_rows_total{kind="rows"}')).toBe(3000);
      expect(await value('backhaul_server_rows_total{kind="file"}')).toBe(ROWS);
      expect(await value('backhaul_server_result_bytes_total{kind="file"}')).toBe(size);
      expect(await value('backhaul_server_result_bytes_total{kind="rows"}')).toBeGreaterThan(3000);
      expect(await value('backhaul_server_gateways_connected')).toBe(1);

      // Chunks: how many, their bytes per codec, and the one refusal.
      expect(await value('sum(backhaul_server_chunks_total{outcome="stored"})')).toBe(chunks);
      expect(await value('sum(backhaul_server_chunk_raw_bytes_total)')).toBe(size);
      expect(await value('sum(backhaul_server_chunk_compression_ratio_count)')).toBe(chunks);
      expect(await value('backhaul_server_chunk_refusals_total{reason="unauthorized"}')).toBe(1);

      // Latency histograms: one observation per command, per file stage.
      expect(await value('backhaul_server_dispatch_seconds_count')).toBe(2);
      expect(await value('backhaul_server_ack_seconds_count')).toBe(2);
      expect(await value('backhaul_server_query_seconds_count{state="completed"}')).toBe(2);
      for (const stage of ['ack', 'first_chunk', 'last_chunk', 'url']) {
        expect(await value(`backhaul_server_file_stage_seconds_count{stage="${stage}"}`)).toBe(1);
      }
      expect(await value('backhaul_server_upload_goodput_bytes_per_second_count')).toBe(1);
      expect(await value('backhaul_server_storage_seconds_count{operation="complete",outcome="ok"}')).toBe(1);
      expect(
        await value('sum(backhaul_server_store_seconds_count{operation=~"insert|insert_claimed"})'),
      ).toBe(2);

      // Admission: limits and occupancy by class, nothing held once both ended.
      expect(await value('backhaul_server_admission_limit{class="small"}')).toBe(200);
      expect(await value('sum(backhaul_server_admission_in_use)')).toBe(0);
      expect(await value('sum(backhaul_server_admission_queued)')).toBe(0);

      // Gateway: the same query from the other side.
      expect(await value('backhaul_gateway_connected')).toBe(1);
      expect(await value('backhaul_gateway_commands_total{outcome="received"}')).toBe(2);
      expect(await value('backhaul_gateway_commands_running')).toBe(0);
      expect(await value('backhaul_gateway_rows_total{kind="file"}')).toBe(ROWS);
      expect(await value('backhaul_gateway_file_bytes_total')).toBe(size);
      expect(await value('sum(backhaul_gateway_chunks_total)')).toBe(chunks);
      expect(await value('sum(backhaul_gateway_chunk_raw_bytes_total)')).toBe(size);
      expect(await value('sum(backhaul_gateway_chunk_wire_bytes_total)')).toBe(
        await value('sum(backhaul_server_chunk_wire_bytes_total)'),
      );
      expect(await value('backhaul_gateway_chunk_retries_total')).toBe(0);
      expect(await value('backhaul_gateway_ack_seconds_count')).toBe(2);
      expect(await value('sum(backhaul_gateway_query_seconds_count{outcome="completed"})')).toBe(2);
      expect(await value('backhaul_gateway_file_compression_ratio_count')).toBe(1);
      expect(await value('backhaul_gateway_upload_goodput_bytes_per_second_count')).toBe(1);
    }, 120_000);
  },
);
