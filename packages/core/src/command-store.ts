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
  /** Records of a gateway in `pending` or `dispatched`, oldest first: what a (re)connecting stream must send. */
  listUndelivered(gatewayId: string): Promise<CommandRecord[]>;
  /** Non-terminal records whose `deadline` is at or before `now`, oldest deadline first. */
  listDue(now: number, limit: number): Promise<CommandRecord[]>;
  close(): Promise<void>;
}

export interface CommandRecord {
  id: string;
  gatewayId: string;
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
  result?: StoredResult;
  error?: Failure;
  /** Why the command was dead-lettered or expired. */
  reason?: string;
}

export type StoredResult =
  | Extract<Completion, { kind: 'rows' }>
  | (Extract<Completion, { kind: 'file' }> & { key: string });
