import type { Statement } from '../store/statement.js';

/**
 * The statements `nest-pg-session/testing` sends, and only it: they move one session's clock
 * so a test sees it expire without waiting. Each announces the change on the invalidation
 * channel when $2 (`cache.notify`) is on, as the store's own statements do, so no instance's
 * cache keeps serving the session.
 */
export const TESTING_SQL = {
  /** The next request finds the session idle for too long (401 `idle_timeout`). */
  expireIdle: {
    name: 'testing.expireIdle',
    text: `
    UPDATE user_sessions SET idle_expires_at = now() - interval '1 second'
    WHERE id = $1 AND revoked_at IS NULL
    RETURNING id, CASE WHEN $2::boolean THEN pg_notify('nest_pg_session', id::text) END AS notified`,
  },

  /** The next request finds the session past its absolute lifetime (401 `absolute_timeout`). */
  expireAbsolute: {
    name: 'testing.expireAbsolute',
    text: `
    UPDATE user_sessions SET absolute_expires_at = now() - interval '1 second'
    WHERE id = $1 AND revoked_at IS NULL
    RETURNING id, CASE WHEN $2::boolean THEN pg_notify('nest_pg_session', id::text) END AS notified`,
  },

  /** Login was `$3` ms ago, as far as `@RequireFreshSession()` can tell (401 `reauth_required`). */
  authenticatedAgo: {
    name: 'testing.authenticatedAgo',
    text: `
    UPDATE user_sessions SET authenticated_at = now() - $3 * interval '1 millisecond'
    WHERE id = $1 AND revoked_at IS NULL
    RETURNING id, CASE WHEN $2::boolean THEN pg_notify('nest_pg_session', id::text) END AS notified`,
  },
} as const satisfies Record<string, Statement>;
