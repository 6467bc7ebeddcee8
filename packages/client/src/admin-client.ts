import type { EnrolledGatewayView, GatewayTokenView, IssuedGatewayToken } from '@backhaul/core';
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
}

export function createBackhaulAdminClient(options: ServerConnectionOptions): BackhaulAdminClient {
  const { call, json, postJson } = serverRequests(options);
  const gatewayPath = (id: string) => `/v1/admin/gateways/${encodeURIComponent(id)}`;
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
  };
}
