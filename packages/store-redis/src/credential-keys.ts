/**
 * The key layout of a credential store (docs/redis.md). It shares the command store's prefix, so
 * one prefix is one deployment; the names (`enrolled`, `enrolment:`, `token:`, `callers`, `caller:`) do not collide with
 * the command store's (`cmd:`, `due`, `gw:`, `dead-letters`).
 */
export interface CredentialKeys {
  /** Set of enrolled gateway IDs. */
  readonly enrolled: string;
  /**
   * Hash of one gateway: `createdAt`, and per token `sha:<id>` (hex SHA-256), `created:<id>` and,
   * once revoked, `revoked:<id>` (epoch ms).
   */
  enrolment(gatewayId: string): string;
  /** String `{"gatewayId","tokenId"}` under a token's hash, present only while the token is valid. */
  token(sha256: string): string;
  /** A token key is `tokenHead + sha256`: scripts build it from the `sha:` field they read. */
  readonly tokenHead: string;
  /** Set of enrolled caller and admin IDs. */
  readonly callers: string;
  /**
   * Hash of one caller or admin: `createdAt`, `role`, `gateways` (a JSON array, absent for every
   * gateway) and its tokens as in `enrolment`. Its valid tokens are `token:` keys too, holding
   * `{"callerId","tokenId"}`, so one hash is never both a gateway's and a caller's.
   */
  caller(callerId: string): string;
  /** A caller key is `callerHead + callerId`: the lookup script builds it from the token's entry. */
  readonly callerHead: string;
}

export function credentialKeys(prefix: string): CredentialKeys {
  const tokenHead = `${prefix}token:`;
  return {
    enrolled: `${prefix}enrolled`,
    enrolment: (gatewayId) => `${prefix}enrolment:${gatewayId}`,
    token: (sha256) => `${tokenHead}${sha256}`,
    tokenHead,
    callers: `${prefix}callers`,
    caller: (callerId) => `${prefix}caller:${callerId}`,
    callerHead: `${prefix}caller:`,
  };
}
