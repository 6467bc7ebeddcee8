import type { FleetView } from '@backhaul/core';
import { renderTable } from './text-table.js';

/**
 * `backhaul-admin fleet` as text: the fleet page's four tables (docs/operations.md, "Fleet
 * page"), headed by the instance that answered, whose view the gateways' connections are.
 */
export function describeFleet(view: FleetView): string {
  const text = (value: string | number | undefined) => value ?? '';
  const section = (title: string, headers: string[], rows: (string | number)[][], none: string) =>
    `\n${title}\n${rows.length > 0 ? renderTable(headers, rows) : `${none}\n`}`;
  return [
    `Instance ${view.instanceId} at ${view.generatedAt}\n`,
    section(
      'Gateways',
      ['gateway', 'source', 'connected', 'since', 'last heartbeat', 'last request'],
      view.gateways.map((gateway) => [
        gateway.id,
        gateway.source,
        gateway.connected ? 'yes' : 'no',
        text(gateway.connectedAt),
        text(gateway.lastHeartbeatAt),
        text(gateway.lastSeenAt),
      ]),
      'No gateway is configured or enrolled.',
    ),
    section(
      'Queries in flight',
      ['query', 'gateway', 'caller', 'state', 'mode', 'stage', 'rows', 'bytes', 'started'],
      view.queries.map((query) => [
        query.id,
        query.gatewayId,
        text(query.callerId),
        query.state,
        query.mode,
        text(query.progress?.stage),
        text(query.progress?.rows),
        text(query.progress?.bytes),
        query.createdAt,
      ]),
      'No query is in flight.',
    ),
    section(
      'Recent failures',
      ['query', 'gateway', 'state', 'code', 'message', 'ended'],
      (view.failures ?? []).map((failure) => [
        failure.id,
        failure.gatewayId,
        failure.state,
        failure.code,
        failure.message,
        failure.at,
      ]),
      view.failures === null ? 'The command store keeps no failure list.' : 'No query failed recently.',
    ),
    section(
      'Dead letters',
      ['query', 'gateway', 'reason', 'dead-lettered', 'replayable'],
      (view.deadLetters ?? []).map((letter) => [
        letter.id,
        text(letter.gatewayId),
        letter.reason,
        letter.at,
        letter.replayable ? 'yes' : 'no',
      ]),
      view.deadLetters === null ? 'The command store keeps no dead-letter list.' : 'No dead letters.',
    ),
  ].join('');
}
