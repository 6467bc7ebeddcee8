/**
 * The key layout of one store (docs/redis.md). Every key starts with the store's prefix, so
 * several deployments or test runs can share one Redis, and a prefix holding a hash tag
 * (`{backhaul}:`) keeps every key in one Redis Cluster slot, as multi-key scripts require.
 */
export interface RedisKeys {
  /** Hash of one command: `record` (JSON), `version`, `state`, `gatewayId`. */
  record(id: string): string;
  /** Sorted set of non-terminal command IDs that have a deadline, scored by that deadline. */
  readonly due: string;
  /** Sorted set of a gateway's `pending` and `dispatched` command IDs, scored by createdAt. */
  undelivered(gatewayId: string): string;
  /**
   * String holding one caller's idempotency claim (JSON), expiring with it. The caller ID is
   * URI-encoded so no caller/key pair can spell another's key.
   */
  claim(callerId: string, key: string): string;
  /** Stream of `{ id, reason, at }`, one entry per command that was dead-lettered. */
  readonly deadLetters: string;
  /** Stream of `{ entry }` (a `FailedCommand` as JSON), one per command that failed or expired. */
  readonly failures: string;
  /**
   * The undelivered key of any gateway is `undeliveredHead + gatewayId + undeliveredTail`. The
   * compare-and-set script needs it to leave the set of a gateway it learns about only from the
   * stored record (a write that changes a record's gateway).
   */
  readonly undeliveredHead: string;
  readonly undeliveredTail: string;
}

export function redisKeys(prefix: string): RedisKeys {
  const undeliveredHead = `${prefix}gw:`;
  const undeliveredTail = ':undelivered';
  return {
    record: (id) => `${prefix}cmd:${id}`,
    due: `${prefix}due`,
    undelivered: (gatewayId) => `${undeliveredHead}${gatewayId}${undeliveredTail}`,
    claim: (callerId, key) => `${prefix}idem:${encodeURIComponent(callerId)}:${key}`,
    deadLetters: `${prefix}dead-letters`,
    failures: `${prefix}failures`,
    undeliveredHead,
    undeliveredTail,
  };
}
