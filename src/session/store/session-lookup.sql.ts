import type { Statement } from './statement.js';

/**
 * When the admin's own session behind impersonation session `s` ends (or ended): its idle or
 * absolute deadline, the moment it was revoked, or now when it is gone (purged, logged out).
 * So an impersonation never outlives the admin's session, whatever ended it.
 */
export const IMPERSONATOR_END = `coalesce((SELECT CASE WHEN a.revoked_at IS NULL THEN least(a.idle_expires_at, a.absolute_expires_at)
                                            ELSE a.revoked_at END
                                  FROM user_sessions a WHERE a.id = s.impersonator_session_id), now())`;

/** Reads of sessions: the hot path's lookup and touch, and the reads beside it. Part of SESSION_SQL (session.sql.ts). */
export const LOOKUP_SQL = {
  /**
   * Hot path: one indexed read by the current or previous token hash. An impersonation
   * session idles out no later than the admin's own session ends (IMPERSONATOR_END); the
   * CASE runs that read for impersonation sessions only.
   */
  lookupByTokenHash: {
    name: 'lookupByTokenHash',
    preparedAs: 'nps_lookup',
    text: `
    SELECT id, user_id, data, created_at, last_seen_at, authenticated_at,
           CASE WHEN impersonator_session_id IS NULL THEN idle_expires_at
                ELSE least(idle_expires_at, ${IMPERSONATOR_END}) END AS idle_expires_at,
           absolute_expires_at, rotated_at, revoked_at, ip, user_agent, version, lifetime, impersonator_id,
           impersonator_session_id, second_factor_pending, token_hash = $1 AS is_current_token, now() AS db_now
    FROM user_sessions s
    WHERE token_hash = $1 OR previous_token_hash = $1
    LIMIT 1`,
  },

  /**
   * Only for a token the hot path did not find: was it ever one of a session's tokens? One
   * indexed read (the primary key; the join reads the session by its own primary key on a
   * hit only). The validator decides on the answer (session-validator.ts, reuse detection).
   */
  findRetiredToken: {
    name: 'findRetiredToken',
    text: `
    SELECT r.session_id, r.token_generation, r.retired_at, s.token_generation AS current_generation,
           s.revoked_at, s.idle_expires_at, s.absolute_expires_at, now() AS db_now
    FROM session_retired_tokens r JOIN user_sessions s ON s.id = r.session_id
    WHERE r.token_hash = $1`,
  },

  /**
   * Conditional: of N concurrent requests past the touch interval ($3 ms), exactly one writes.
   * $2 is the idle timeout of the row's own lifetime profile. An impersonation session's
   * activity keeps the admin's own session (which its client no longer presents) from idling
   * out under it, so stopping returns to it; never shortening it (greatest). SKIP LOCKED: a
   * touch never waits for (nor deadlocks with) a statement ending the admin's session, which
   * locks the admin's row first and the impersonation's second; that touch extends nothing.
   */
  touchIfStale: {
    name: 'touchIfStale',
    preparedAs: 'nps_touch',
    text: `
    WITH touched AS (
      UPDATE user_sessions
      SET last_seen_at = now(), idle_expires_at = now() + $2 * interval '1 millisecond'
      WHERE id = $1 AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
        AND last_seen_at <= now() - $3 * interval '1 millisecond'
      RETURNING last_seen_at, idle_expires_at, impersonator_session_id
    ), impersonator_touched AS (
      UPDATE user_sessions s SET idle_expires_at = greatest(s.idle_expires_at, t.idle_expires_at)
      FROM touched t
      WHERE s.id IN (SELECT id FROM user_sessions
                     WHERE id = t.impersonator_session_id
                       AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
                     FOR UPDATE SKIP LOCKED)
    )
    SELECT last_seen_at, idle_expires_at FROM touched`,
  },

  listForUser: {
    name: 'listForUser',
    text: `
    SELECT id, created_at, last_seen_at, LEAST(idle_expires_at, absolute_expires_at) AS expires_at, ip, user_agent,
           lifetime, impersonator_id, second_factor_pending
    FROM user_sessions
    WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
    ORDER BY created_at DESC, id`,
  },

  findLiveById: {
    name: 'findLiveById',
    text: `
    SELECT id, user_id, data, created_at, last_seen_at, authenticated_at, idle_expires_at,
           absolute_expires_at, rotated_at, revoked_at, ip, user_agent, version, lifetime, impersonator_id,
           impersonator_session_id
    FROM user_sessions
    WHERE id = $1 AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()`,
  },
} as const satisfies Record<string, Statement>;
