import type { CommandRecord } from '@backhaul/core';

/** A query that ended without a result, as the fleet page lists it. */
export interface RecentFailure {
  id: string;
  gatewayId: string;
  callerId?: string;
  state: 'failed' | 'expired';
  /** The gateway's error code for a failed query; `expired` for one whose deadline passed. */
  code: string;
  message: string;
  /** ISO 8601, when it ended. */
  at: string;
}

/**
 * The last queries that failed or expired, as this process applied those transitions. Per
 * instance: the command store keeps no index of failed records, so behind a load balancer each
 * instance lists the failures it wrote (docs/operations.md, "Fleet page"). Bounded, newest first.
 */
export interface RecentFailures {
  /** Called with every record the dispatcher changed; keeps the failed and expired ones. */
  observe(record: CommandRecord): void;
  list(): RecentFailure[];
}

export function createRecentFailures(capacity = 50): RecentFailures {
  const kept: RecentFailure[] = [];
  return {
    observe(record) {
      if (record.state !== 'failed' && record.state !== 'expired') return;
      // A transition is applied once, but a repeat answer must still not list the query twice.
      if (kept.some((failure) => failure.id === record.id)) return;
      kept.unshift({
        id: record.id,
        gatewayId: record.gatewayId,
        ...(record.callerId ? { callerId: record.callerId } : {}),
        state: record.state,
        code: record.error?.code ?? record.state,
        message: record.error?.message ?? record.reason ?? '',
        at: new Date(record.updatedAt).toISOString(),
      });
      kept.length = Math.min(kept.length, capacity);
    },
    list: () => kept.map((failure) => ({ ...failure })),
  };
}
