/**
 * Enrolled gateways and their tokens (docs/protocol.md §10). The store never sees a token, only
 * its SHA-256 hash: the server generates every token itself from 256 random bits, so the token has
 * as much entropy as the hash has bits, and no dictionary or brute force can invert the digest.
 * A slow password KDF (scrypt, argon2) is for secrets people choose; here it would only add
 * milliseconds to every authenticated request (each chunk upload) and buy nothing.
 *
 * Servers that share a store share enrolments: a token issued through one server is valid on all,
 * and one revoked through one server stops authenticating on all at once (the next request).
 */
export interface CredentialStore {
  readonly specificationVersion: 'v1';
  readonly name: string;
  /** Creates the gateway with its first token; `conflict` if the gateway is already enrolled. */
  enrol(gatewayId: string, token: GatewayTokenRecord): Promise<void>;
  /** Adds a token to an enrolled gateway (rotation); `not-found` if it is not enrolled. */
  addToken(gatewayId: string, token: GatewayTokenRecord): Promise<void>;
  /**
   * Marks a token revoked at `now`; it stops authenticating at once. Revoking a revoked token
   * changes nothing and returns it as it is. `not-found` for an unknown gateway or token.
   */
  revokeToken(gatewayId: string, tokenId: string, now: number): Promise<GatewayTokenRecord>;
  /** Deletes the gateway and every token of it; false if it was not enrolled. */
  remove(gatewayId: string): Promise<boolean>;
  get(gatewayId: string): Promise<GatewayEnrolment | undefined>;
  /** Every enrolled gateway, ordered by ID. */
  list(): Promise<GatewayEnrolment[]>;
  /** The gateway and token a not-revoked token hash belongs to, or undefined. One read: it runs per request. */
  findActiveToken(sha256: string): Promise<ActiveGatewayToken | undefined>;

  // Callers and admins (docs/protocol.md §10.5): enrolled, rotated and revoked like gateways.
  /** Creates the caller with its first token; `conflict` if the caller ID is already enrolled. */
  enrolCaller(caller: NewCaller, token: GatewayTokenRecord): Promise<void>;
  /** Replaces a caller's gateway list (`null`: every gateway); `not-found` if it is not enrolled. */
  restrictCaller(callerId: string, gateways: readonly string[] | null): Promise<CallerEnrolment>;
  /** Adds a token to an enrolled caller (rotation); `not-found` if it is not enrolled. */
  addCallerToken(callerId: string, token: GatewayTokenRecord): Promise<void>;
  /** As `revokeToken`, for a caller's token. */
  revokeCallerToken(callerId: string, tokenId: string, now: number): Promise<GatewayTokenRecord>;
  /** Deletes the caller and every token of it; false if it was not enrolled. */
  removeCaller(callerId: string): Promise<boolean>;
  getCaller(callerId: string): Promise<CallerEnrolment | undefined>;
  /** Every enrolled caller and admin, ordered by ID. */
  listCallers(): Promise<CallerEnrolment[]>;
  /** The caller, its role and gateways a not-revoked token hash belongs to, or undefined. Runs per request. */
  findActiveCallerToken(sha256: string): Promise<ActiveCallerToken | undefined>;
  close(): Promise<void>;
}

export interface GatewayTokenRecord {
  /** Public name of the token, shown in listings and used to revoke it. */
  id: string;
  /** SHA-256 of the token, 64 lower-case hex digits. */
  sha256: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; absent while the token is valid. */
  revokedAt?: number;
}

export interface GatewayEnrolment {
  gatewayId: string;
  /** Epoch ms. */
  createdAt: number;
  /** Oldest first. */
  tokens: GatewayTokenRecord[];
}

export interface ActiveGatewayToken {
  gatewayId: string;
  tokenId: string;
}

/** `caller` submits and reads its own queries; `admin` opens the admin API and reads every query. */
export type CallerRole = 'caller' | 'admin';

/** A caller or admin as it is enrolled. */
export interface NewCaller {
  callerId: string;
  role: CallerRole;
  /** The gateways a caller's queries may go to; absent: every gateway. Meaningless for an admin. */
  gateways?: readonly string[];
  /** Epoch ms. */
  createdAt: number;
}

export interface CallerEnrolment extends NewCaller {
  gateways?: string[];
  /** Oldest first. */
  tokens: GatewayTokenRecord[];
}

export interface ActiveCallerToken {
  callerId: string;
  tokenId: string;
  role: CallerRole;
  gateways?: string[];
}
