import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type Command,
  type CommandCancel,
  type CommandRecord,
  type GatewayView,
  type Hello,
  PROTOCOL_VERSION,
  sseEvents,
} from '@backhaul/core';
import type { EnrolledToken } from './credentials.js';
import type { SseConnection, SseHub } from './sse-connection.js';

/**
 * The command streams to gateways (docs/protocol.md §4): at most one live stream per gateway,
 * and what listGateways reports about each gateway's connection.
 */
export interface CommandStreams {
  /**
   * Opens a stream, sends `retry:` and `hello`, and makes it the gateway's current stream. A
   * stream opened with an enrolled token remembers it, so a revocation can end the stream.
   */
  open(gatewayId: string, req: IncomingMessage, res: ServerResponse, token?: EnrolledToken): SseConnection;
  isConnected(gatewayId: string): boolean;
  /** The gateways with a live stream on this server. */
  connectedGatewayIds(): string[];
  /**
   * Writes what the gateway must know of a command to its stream: the command itself (§4.2), or
   * for a `cancelled` one the `cancel` message (§4.3), so both take the one path to the gateway.
   * Returns false when the gateway has no stream: the command stays in the store and goes out on
   * the next connection (a cancel is then carried by the refusal of the gateway's next answer).
   */
  send(record: CommandRecord): boolean;
  /** Resolves once the gateway's stream has taken what was written to it (at once without one). */
  drained(gatewayId: string): Promise<void>;
  /** The gateway's stream has not yet taken what was written to it. */
  backlogged(gatewayId: string): boolean;
  /** Any authenticated request from the gateway counts as a sign of life. */
  touch(gatewayId: string): void;
  views(): GatewayView[];
  /** Epoch ms of the last heartbeat written to the gateway's live stream (docs/protocol.md §4). */
  lastHeartbeatAt(gatewayId: string): number | undefined;
  /** The live streams opened with an enrolled token, and that token. */
  enrolledStreams(): { gatewayId: string; token: EnrolledToken }[];
  /**
   * Ends the gateway's live stream if it was opened with an enrolled token (with this one, when
   * `tokenId` is given): the token was revoked or the gateway removed (§10.4). True if one ended.
   */
  closeEnrolled(gatewayId: string, tokenId?: string): boolean;
}

export interface CommandStreamOptions {
  hub: SseHub;
  gatewayIds: readonly string[];
  hello: Omit<Hello, 'gatewayId'>;
  retryMs: number;
}

interface GatewayConnection {
  stream: SseConnection | undefined;
  /** The enrolled token the current stream was opened with; undefined for a configured gateway. */
  token?: EnrolledToken;
  connectedAt?: number;
  lastSeenAt?: number;
  /** `<command id>#<delivery>` already written on the current stream, so a resend race sends once. */
  sent: Set<string>;
}

export function commandEvent(record: CommandRecord): Command {
  // docs/protocol.md §4.2 `delivery`: 1 on first delivery, +1 for every redelivery after an ack timeout.
  return { ...record.command, delivery: record.redeliveries + 1 };
}

/** §4.3 The cancel message for a cancelled command. */
export function cancelEvent(record: CommandRecord): CommandCancel {
  return { v: PROTOCOL_VERSION, id: record.id, ...(record.reason ? { reason: record.reason } : {}) };
}

export function createCommandStreams(options: CommandStreamOptions): CommandStreams {
  const gateways = new Map<string, GatewayConnection>();
  for (const id of options.gatewayIds) gateways.set(id, { stream: undefined, sent: new Set() });
  const entry = (id: string): GatewayConnection => {
    let found = gateways.get(id);
    if (!found) {
      found = { stream: undefined, sent: new Set() };
      gateways.set(id, found);
    }
    return found;
  };

  return {
    open(gatewayId, req, res, token) {
      const gateway = entry(gatewayId);
      // A gateway has one current stream; an older one is a half-dead connection the gateway
      // gave up on, and sending there would lose commands.
      const previous = gateway.stream;
      const stream = options.hub.open(req, res, options.retryMs);
      gateway.stream = stream;
      gateway.token = token;
      gateway.sent = new Set();
      gateway.connectedAt = Date.now();
      gateway.lastSeenAt = gateway.connectedAt;
      previous?.close();
      stream.onClose(() => {
        if (gateway.stream === stream) {
          gateway.stream = undefined;
          gateway.lastSeenAt = Date.now();
        }
      });
      stream.send(sseEvents.hello, { ...options.hello, gatewayId } satisfies Hello);
      return stream;
    },
    isConnected: (gatewayId) => gateways.get(gatewayId)?.stream?.closed === false,
    connectedGatewayIds: () =>
      [...gateways].filter(([, gateway]) => gateway.stream?.closed === false).map(([id]) => id),
    send(record) {
      const gateway = gateways.get(record.gatewayId);
      const stream = gateway?.stream;
      if (!gateway || !stream || stream.closed) return false;
      if (record.state === 'cancelled') {
        const key = `${record.id}#cancel`;
        if (gateway.sent.has(key)) return true;
        // No `id:` line: Last-Event-ID names the last *command* the gateway saw (§4.2).
        if (!stream.send(sseEvents.cancel, cancelEvent(record))) return false;
        gateway.sent.add(key);
        return true;
      }
      const command = commandEvent(record);
      const key = `${command.id}#${command.delivery}`;
      if (gateway.sent.has(key)) return true;
      if (!stream.send(sseEvents.command, command, command.id)) return false;
      // Bounded: forgetting old keys at worst sends a command twice, which the gateway dedupes (§4).
      if (gateway.sent.size >= 10_000) gateway.sent.clear();
      gateway.sent.add(key);
      return true;
    },
    drained(gatewayId) {
      return gateways.get(gatewayId)?.stream?.drained() ?? Promise.resolve();
    },
    backlogged: (gatewayId) => gateways.get(gatewayId)?.stream?.backlogged === true,
    touch(gatewayId) {
      entry(gatewayId).lastSeenAt = Date.now();
    },
    views() {
      return [...gateways].map(([id, gateway]) => {
        const connected = gateway.stream?.closed === false;
        return {
          id,
          connected,
          ...(connected && gateway.connectedAt
            ? { connectedAt: new Date(gateway.connectedAt).toISOString() }
            : {}),
          ...(gateway.lastSeenAt ? { lastSeenAt: new Date(gateway.lastSeenAt).toISOString() } : {}),
        };
      });
    },
    lastHeartbeatAt(gatewayId) {
      const stream = gateways.get(gatewayId)?.stream;
      return stream && !stream.closed ? stream.lastHeartbeatAt : undefined;
    },
    enrolledStreams() {
      return [...gateways].flatMap(([gatewayId, { stream, token }]) =>
        stream?.closed === false && token ? [{ gatewayId, token }] : [],
      );
    },
    closeEnrolled(gatewayId, tokenId) {
      const gateway = gateways.get(gatewayId);
      const stream = gateway?.stream;
      if (!stream || stream.closed || !gateway.token) return false;
      if (tokenId !== undefined && gateway.token.tokenId !== tokenId) return false;
      stream.close();
      return true;
    },
  };
}
