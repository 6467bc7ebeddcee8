/**
 * The key layout of a credential store (docs/redis.md). It shares the command store's prefix, so
 * one prefix is one deployment; the names (`enrolled`, `enrolment:`, `token:`) do not collide with
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
}

export function credentialKeys(prefix: string): CredentialKeys {
  const tokenHead = `${prefix}token:`;
  return {
    enrolled: `${prefix}enrolled`,
    enrolment: (gatewayId) => `${prefix}enrolment:${gatewayId}`,
    token: (sha256) => `${tokenHead}${sha256}`,
    tokenHead,
  };
}
