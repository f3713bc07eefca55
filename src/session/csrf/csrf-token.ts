import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The CSRF token of a session generation: HMAC-SHA256 keyed with the session token itself.
 *
 * Why this shape (a synchronizer token derived from the session, not a stored value or a
 * server secret):
 *  - bound to the session: another session's token, including one the attacker owns, never
 *    matches; and it changes whenever the session token rotates;
 *  - unguessable: computing it needs the session token, which lives only in an HttpOnly cookie
 *    (anyone who has that token already holds the session, so there is nothing left to forge);
 *  - one way: the CSRF token may be read by page scripts, and reveals nothing about the
 *    session token; the database holds SHA-256(token), which is not the HMAC key either;
 *  - nothing to store, migrate or share: every app instance derives the same value, with no
 *    secret to distribute or rotate.
 */
const CSRF_CONTEXT = 'nest-pg-session/csrf/v1';

export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update(CSRF_CONTEXT).digest('base64url');
}

/** Constant-time comparison; anything that is not a string of the same length simply fails. */
export function csrfTokensMatch(expected: string, presented: unknown): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(presented, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
