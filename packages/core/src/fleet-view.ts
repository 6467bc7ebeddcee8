import type { FailedCommand } from './command-store.js';
import type { CommandState, Progress, ResultMode } from './protocol.js';

/*
 * What `GET /v1/admin/fleet` answers (docs/operations.md, "Fleet page"; docs/protocol.md §10.7):
 * the server builds it, the fleet page and the admin client read it.
 */

/** One gateway as the fleet page shows it. */
export interface FleetGateway {
  id: string;
  /** Configured in the server's options, enrolled through the admin API, or removed since it connected here. */
  source: 'configured' | 'enrolled' | 'removed';
  /** Holds a live command stream *to the instance that answered* (`FleetView.instanceId`). */
  connected: boolean;
  /** ISO 8601; while connected. */
  connectedAt?: string;
  /**
   * ISO 8601, while connected: the last heartbeat this instance wrote to its command stream (every
   * `heartbeatMs`, skipped while the gateway is not taking what it was sent).
   */
  lastHeartbeatAt?: string;
  /** ISO 8601: its last request to this instance, or when its stream opened or closed here. */
  lastSeenAt?: string;
}

/** A query that has not ended, read from the shared command store. */
export interface FleetQuery {
  id: string;
  gatewayId: string;
  callerId?: string;
  state: CommandState;
  mode: ResultMode;
  progress?: Progress;
  deliveries: number;
  createdAt: string;
  updatedAt: string;
}

/** A query that failed or expired, from the shared store; `at` is ISO 8601. */
export type FleetFailure = Omit<FailedCommand, 'at'> & { at: string };

/** A dead-lettered query: never acknowledged by its gateway; an operator may replay it. */
export interface FleetDeadLetter {
  id: string;
  gatewayId?: string;
  callerId?: string;
  reason: string;
  at: string;
  /** False once its record is gone (past retention): nothing is left to replay. */
  replayable: boolean;
}

/** `GET /v1/admin/fleet` (docs/operations.md, "Fleet page"). */
export interface FleetView {
  /** The instance that answered: the gateways' connections and heartbeats are its own. */
  instanceId: string;
  generatedAt: string;
  gateways: FleetGateway[];
  queries: FleetQuery[];
  /** Null when the command store keeps no failure list. */
  failures: FleetFailure[] | null;
  /** Null when the command store keeps no dead-letter list. */
  deadLetters: FleetDeadLetter[] | null;
}
