import type { Command, CommandState, Completion, Failure, Progress } from './protocol.js';

/**
 * The durable log of commands. The server persists a record before it sends the command
 * (at-least-once starts here) and moves it through the delivery state machine with
 * compare-and-set on `version`, so two server processes never both apply the same step.
 */
export interface CommandStore {
  readonly specificationVersion: 'v1';
  readonly name: string;
  /** Persists a new record; `conflict` if the ID exists. Resolves only once the write is durable. */
  insert(record: CommandRecord): Promise<void>;
  get(id: string): Promise<CommandRecord | undefined>;
  /**
   * Replaces the record if its stored version is still `next.version - 1`; returns false when
   * another writer got there first (the caller reloads and decides again).
   */
  compareAndSet(next: CommandRecord): Promise<boolean>;
  /**
   * Persists `record` and, in the same atomic step, remembers it as the command of `claim` (a
   * caller's `Idempotency-Key`, docs/protocol.md §3.1) until `claim.expiresAt`. When that caller's
   * key is already remembered, nothing is written and the claim stored first is returned: of two
   * concurrent first requests with one key, exactly one creates a command. Resolves `undefined`
   * once both writes are durable; `invalid-state` if the record's ID exists.
   */
  insertClaimed(record: CommandRecord, claim: NewIdempotencyClaim): Promise<IdempotencyClaim | undefined>;
  /** The claim of `callerId` on `key`, unless there is none or it expired. */
  findClaim(callerId: string, key: string): Promise<IdempotencyClaim | undefined>;
  /** Records of a gateway in `pending` or `dispatched`, oldest first: what a (re)connecting stream must send. */
  listUndelivered(gatewayId: string): Promise<CommandRecord[]>;
  /** Non-terminal records whose `deadline` is at or before `now`, oldest deadline first. */
  listDue(now: number, limit: number): Promise<CommandRecord[]>;
  /**
   * Optional: the most recent dead letters, newest first, as every server sharing the store sees
   * them (the fleet page lists them for replay). A store without it has no dead-letter list.
   */
  listDeadLetters?(limit: number): Promise<DeadLetter[]>;
  /**
   * Optional: the most recent commands that entered `failed` or `expired`, newest first, as every
   * server sharing the store sees them (the fleet page lists them). Kept as long as ended records.
   */
  listFailures?(limit: number): Promise<FailedCommand[]>;
  close(): Promise<void>;
}

/** One dead-lettered command, as the operator reads it. */
export interface DeadLetter {
  id: string;
  reason: string;
  /** Epoch ms of the transition (the record's `updatedAt`). */
  at: number;
}

export interface CommandRecord {
  id: string;
  gatewayId: string;
  /**
   * The caller that submitted it (its configured or enrolled ID): only it, and admins, may read or
   * cancel it. Absent on records written before callers were recorded: those only admins see.
   */
  callerId?: string;
  command: Omit<Command, 'delivery'>;
  state: CommandState;
  /** Incremented by every write; the compare-and-set token. */
  version: number;
  /** Epoch ms. */
  createdAt: number;
  updatedAt: number;
  /** How many times the command was sent because the previous send was not acked in time. */
  redeliveries: number;
  /** When the current state times out (ack, completion or queue deadline); undefined once terminal. */
  deadline: number | undefined;
  progress?: Progress;
  /**
   * Set when an `auto` query switched to a file (its first chunk arrived): the rows its gateway had
   * sent live as row batches by then, which are the file's first rows (docs/protocol.md §3.9).
   */
  liveRows?: number;
  result?: StoredResult;
  error?: Failure;
  /** Why the command was dead-lettered or expired. */
  reason?: string;
}

/** One command that ended without a result, as the operator reads it. */
export interface FailedCommand {
  id: string;
  gatewayId: string;
  callerId?: string;
  state: 'failed' | 'expired';
  /** The gateway's error code for a failed command; `expired` for one whose deadline passed. */
  code: string;
  message: string;
  /** Epoch ms of the transition (the record's `updatedAt`). */
  at: number;
}

/** What a store lists of a record that is `failed` or `expired`; undefined for any other state. */
export function failedCommandOf(record: CommandRecord): FailedCommand | undefined {
  if (record.state !== 'failed' && record.state !== 'expired') return undefined;
  return {
    id: record.id,
    gatewayId: record.gatewayId,
    ...(record.callerId ? { callerId: record.callerId } : {}),
    state: record.state,
    code: record.error?.code ?? record.state,
    message: record.error?.message ?? record.reason ?? '',
    at: record.updatedAt,
  };
}

/**
 * What the store remembers of one `Idempotency-Key`: which command the first request with it
 * created, and a digest of that request, so a repeat can be told from a reuse for another body.
 */
export interface IdempotencyClaim {
  /** Whose key it is: keys of different callers never collide. */
  callerId: string;
  key: string;
  /** The command the first request with this key created. */
  commandId: string;
  /** Digest of the first request's validated body. */
  fingerprint: string;
  /** Epoch ms after which the key is forgotten and may create a new command. */
  expiresAt: number;
}

/** A claim as it is written: the command is the record inserted with it. */
export type NewIdempotencyClaim = Omit<IdempotencyClaim, 'commandId'>;

export type StoredResult =
  | Extract<Completion, { kind: 'rows' }>
  | (Extract<Completion, { kind: 'file' }> & { key: string });
