import type {
  CommandRecord,
  CommandStore,
  CredentialStore,
  FleetDeadLetter,
  FleetGateway,
  FleetQuery,
  FleetView,
} from '@backhaul/core';
import type { CommandStreams } from './command-stream.js';
import { deliveries } from './query-views.js';

export interface FleetSources {
  instanceId: string;
  /** The store as configured (not the metrics wrapper), so its optional lists are seen. */
  store: CommandStore;
  credentialStore: CredentialStore;
  configuredGatewayIds: readonly string[];
  streams: CommandStreams;
}

/** How many in-flight queries and dead letters one answer lists: a page, not an export. */
export const FLEET_LIST_LIMIT = 200;
/** How many failures and dead letters: the recent ones an operator looks at. */
const RECENT_LIMIT = 50;

export async function fleetView(sources: FleetSources): Promise<FleetView> {
  const { store } = sources;
  // Every non-terminal record has a deadline (ack, completion or queue), so "due by the end of
  // time" is every query in flight: one read of the shared store's deadline index.
  const [inFlight, enrolled, failures, deadLetters] = await Promise.all([
    store.listDue(Number.MAX_SAFE_INTEGER, FLEET_LIST_LIMIT),
    sources.credentialStore.list(),
    store.listFailures?.(RECENT_LIMIT),
    deadLetterViews(store),
  ]);
  return {
    instanceId: sources.instanceId,
    generatedAt: new Date().toISOString(),
    gateways: gatewayViews(sources, new Set(enrolled.map((e) => e.gatewayId))),
    queries: inFlight.sort((a, b) => a.createdAt - b.createdAt).map(queryView),
    failures: failures?.map((failure) => ({ ...failure, at: new Date(failure.at).toISOString() })) ?? null,
    deadLetters,
  };
}

function gatewayViews(sources: FleetSources, enrolled: Set<string>): FleetGateway[] {
  const configured = new Set(sources.configuredGatewayIds);
  const live = new Map(sources.streams.views().map((view) => [view.id, view]));
  const ids = [...new Set([...configured, ...enrolled, ...live.keys()])].sort();
  return ids.map((id) => {
    const view = live.get(id);
    const heartbeat = sources.streams.lastHeartbeatAt(id);
    return {
      id,
      source: configured.has(id) ? 'configured' : enrolled.has(id) ? 'enrolled' : 'removed',
      connected: view?.connected ?? false,
      ...(view?.connectedAt ? { connectedAt: view.connectedAt } : {}),
      ...(heartbeat === undefined ? {} : { lastHeartbeatAt: new Date(heartbeat).toISOString() }),
      ...(view?.lastSeenAt ? { lastSeenAt: view.lastSeenAt } : {}),
    };
  });
}

function queryView(record: CommandRecord): FleetQuery {
  return {
    id: record.id,
    gatewayId: record.gatewayId,
    ...(record.callerId ? { callerId: record.callerId } : {}),
    state: record.state,
    mode: record.command.mode,
    ...(record.progress ? { progress: record.progress } : {}),
    deliveries: deliveries(record),
    createdAt: new Date(record.createdAt).toISOString(),
    updatedAt: new Date(record.updatedAt).toISOString(),
  };
}

async function deadLetterViews(store: CommandStore): Promise<FleetDeadLetter[] | null> {
  if (!store.listDeadLetters) return null;
  const letters = await store.listDeadLetters(RECENT_LIMIT);
  return Promise.all(
    letters.map(async (letter): Promise<FleetDeadLetter> => {
      const record = await store.get(letter.id);
      const still = record?.state === 'dead-lettered';
      return {
        id: letter.id,
        ...(record ? { gatewayId: record.gatewayId } : {}),
        ...(record?.callerId ? { callerId: record.callerId } : {}),
        reason: letter.reason,
        at: new Date(letter.at).toISOString(),
        replayable: still,
      };
    }),
  );
}
