import { createHmac } from 'node:crypto';

/** Marks a user id in the audit log as a pseudonym: 'anon:' and 32 hex digits. */
export const PSEUDONYM_PREFIX = 'anon:';
export const PSEUDONYM_PATTERN = /^anon:[0-9a-f]{32}$/;

/**
 * The erased user's stand-in in the audit log: HMAC-SHA256 of the user id under the module's
 * 'user-pseudonym' key, truncated to 128 bits. Keyed, so nobody without the key can test a
 * guessed user id against it; stable, so every row of one user keeps pointing at one subject and
 * per-user security statistics (reuse alerts, revocations) survive the erasure.
 */
export function userPseudonym(key: Buffer, userId: string): string {
  const mac = createHmac('sha256', key).update(userId, 'utf8').digest('hex');
  return `${PSEUDONYM_PREFIX}${mac.slice(0, 32)}`;
}
