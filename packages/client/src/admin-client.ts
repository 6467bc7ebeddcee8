import type {
  EnrolCaller,
  EnrolledCallerView,
  EnrolledGatewayView,
  FleetView,
  GatewayTokenView,
  IssuedCallerToken,
  IssuedGatewayToken,
  QueryView,
} from '@backhaul/core';
import { type ServerConnectionOptions, serverRequests } from './server-requests.js';

/** The operator's client for the admin API (docs/protocol.md §10). `token` is an admin token. */
export interface BackhaulAdminClient {
  /** Enrols a gateway; the answer carries its first token, the only time the server shows it. */
  enrol(gatewayId: string): Promise<IssuedGatewayToken>;
  list(): Promise<EnrolledGatewayView[]>;
  get(gatewayId: string): Promise<EnrolledGatewayView>;
  /** Issues one more token for the gateway (rotation): the old ones stay valid until revoked. */
  issueToken(gatewayId: string): Promise<IssuedGatewayToken>;
  /** Revokes a token: refused from the next request on, and its live stream ends. */
  revokeToken(gatewayId: string, tokenId: string): Promise<GatewayTokenView>;
  /** Removes the gateway and all its tokens. */
  remove(gatewayId: string): Promise<void>;

  /**
   * §10.7 What the fleet page shows: gateways (connections as the answering instance sees them),
   * queries in flight, recent failures and dead letters.
   */
  fleet(): Promise<FleetView>;
  /**
   * §10.7 Submits a dead-lettered query again for its caller; the view of the new query. A repeat
   * answers the same new query.
   */
  replayDeadLetter(queryId: string): Promise<QueryView>;

  /** §10.5 Callers and admins, with the same lifecycle as gateways. */
  callers: {
    /** Enrols a caller (or `role: 'admin'`), optionally restricted to `gateways`; carries its first token. */
    enrol(caller: EnrolCaller): Promise<IssuedCallerToken>;
    list(): Promise<EnrolledCallerView[]>;
    get(callerId: string): Promise<EnrolledCallerView>;
    /** Replaces the caller's gateway list; `null` lets it query every gateway. */
    restrict(callerId: string, gateways: string[] | null): Promise<EnrolledCallerView>;
    issueToken(callerId: string): Promise<IssuedCallerToken>;
    /** Refused from the next request on, on every server sharing the credential store. */
    revokeToken(callerId: string, tokenId: string): Promise<GatewayTokenView>;
    remove(callerId: string): Promise<void>;
  };
}

export function createBackhaulAdminClient(options: ServerConnectionOptions): BackhaulAdminClient {
  const { call, json, postJson } = serverRequests(options);
  const gatewayPath = (id: string) => `/v1/admin/gateways/${encodeURIComponent(id)}`;
  const callerPath = (id: string) => `/v1/admin/callers/${encodeURIComponent(id)}`;
  return {
    enrol: (gatewayId) => postJson<IssuedGatewayToken>('/v1/admin/gateways', { gatewayId }),
    list: async () => (await json<{ gateways: EnrolledGatewayView[] }>('/v1/admin/gateways')).gateways,
    get: (gatewayId) => json<EnrolledGatewayView>(gatewayPath(gatewayId)),
    issueToken: (gatewayId) => postJson<IssuedGatewayToken>(`${gatewayPath(gatewayId)}/tokens`, {}),
    revokeToken: (gatewayId, tokenId) =>
      postJson<GatewayTokenView>(
        `${gatewayPath(gatewayId)}/tokens/${encodeURIComponent(tokenId)}/revoke`,
        {},
      ),
    async remove(gatewayId) {
      await call(gatewayPath(gatewayId), { method: 'DELETE' });
    },
    fleet: () => json<FleetView>('/v1/admin/fleet'),
    replayDeadLetter: (queryId) =>
      json<QueryView>(`/v1/admin/dead-letters/${encodeURIComponent(queryId)}/replay`, { method: 'POST' }),
    callers: {
      enrol: (caller) => postJson<IssuedCallerToken>('/v1/admin/callers', caller),
      list: async () => (await json<{ callers: EnrolledCallerView[] }>('/v1/admin/callers')).callers,
      get: (callerId) => json<EnrolledCallerView>(callerPath(callerId)),
      restrict: (callerId, gateways) =>
        json<EnrolledCallerView>(callerPath(callerId), {
          method: 'PATCH',
          body: JSON.stringify({ gateways }),
          headers: { 'content-type': 'application/json' },
        }),
      issueToken: (callerId) => postJson<IssuedCallerToken>(`${callerPath(callerId)}/tokens`, {}),
      revokeToken: (callerId, tokenId) =>
        postJson<GatewayTokenView>(
          `${callerPath(callerId)}/tokens/${encodeURIComponent(tokenId)}/revoke`,
          {},
        ),
      async remove(callerId) {
        await call(callerPath(callerId), { method: 'DELETE' });
      },
    },
  };
}
