import type { Statement } from './statement.js';

/**
 * Two CTEs for a statement that ends sessions (`ended`: a query of their ids): every live
 * impersonation started from one of them ends with it (revoked 'impersonator_ended', audited
 * `impersonation_ended` with the admin as actor), so an admin's revoked, logged-out or stolen
 * session leaves no impersonation behind. The statement adds `impersonations_ended` to its
 * notified ids and `impersonations_ended_audit` to its audit rows. `$ip`/`$ua`: its parameters.
 */
export function endingImpersonationsOf(ended: string, ip: string, userAgent: string): string {
  return `impersonations_ended AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'impersonator_ended', data = '{}'::jsonb
      WHERE impersonator_session_id IN (${ended}) AND id NOT IN (${ended}) AND revoked_at IS NULL
      RETURNING id, user_id, impersonator_id, impersonator_session_id
    ), impersonations_ended_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'impersonation_ended', id, user_id, impersonator_id, ${ip}, ${userAgent},
             jsonb_build_object('reason', 'impersonator_session_ended', 'sessionId', id, 'impersonatorSessionId', impersonator_session_id)
      FROM impersonations_ended
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    )`;
}

/** Ends of sessions: logout and expiry, revoking one or all of a user's. Part of SESSION_SQL (session.sql.ts). */
export const END_SQL = {
  /**
   * Logout and expiry: the row goes, its event ($2) stays, with the admin as actor when it was
   * an impersonation session. Such a session's logout, or its idle expiry before its own
   * deadline (the lookup's IMPERSONATOR_END: the admin's session ended), is recorded as
   * `impersonation_ended` (reason 'logout' or 'impersonator_session_ended'), as a stop is. The
   * impersonations the deleted session had started end with it.
   */
  deleteWithEvent: {
    name: 'deleteWithEvent',
    text: `
    WITH gone AS (
      DELETE FROM user_sessions WHERE id = $1
      RETURNING id, user_id, impersonator_id, impersonator_session_id,
        CASE WHEN impersonator_session_id IS NULL THEN NULL
             WHEN $2::text = 'logout' THEN 'logout'
             WHEN $2::text = 'expired_idle' AND idle_expires_at > now() THEN 'impersonator_session_ended'
        END AS impersonation_end
    ), audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT CASE WHEN impersonation_end IS NULL THEN $2 ELSE 'impersonation_ended' END,
             id, user_id, coalesce(impersonator_id, $3), $4, $5,
             CASE WHEN impersonation_end IS NULL THEN '{}'::jsonb
                  ELSE jsonb_build_object('reason', impersonation_end, 'sessionId', id,
                                          'impersonatorSessionId', impersonator_session_id) END || $6::jsonb
      FROM gone
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    ), ${endingImpersonationsOf('SELECT id FROM gone', '$4', '$5')}
    SELECT (SELECT count(*)::int FROM gone) AS count,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json)
       FROM (SELECT * FROM audit UNION ALL SELECT * FROM impersonations_ended_audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text)
             FROM (SELECT id FROM gone UNION SELECT id FROM impersonations_ended) ids WHERE $7::boolean) n) AS notified_ids`,
  },

  /**
   * Revocation keeps a data-less tombstone until the row would have expired anyway, so the
   * holder of the token is told 'revoked' rather than 'invalid'. $7 scopes it to one user.
   * A `revoked` row always names an actor: the caller's, else the session's owner (who
   * revokes their own session, changes their password, is evicted by their own login).
   * `token_reuse_detected` is the system's doing and keeps a null actor unless one is given;
   * on an impersonation session, the admin behind it is the actor unless one is given. The
   * impersonations the session had started end with it.
   */
  revoke: {
    name: 'revoke',
    text: `
    WITH revoked AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = $3, data = '{}'::jsonb
      WHERE id = $1 AND revoked_at IS NULL AND ($7::text IS NULL OR user_id = $7)
      RETURNING id, user_id, impersonator_id
    ), audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT $2, id, user_id, coalesce($4, impersonator_id, CASE WHEN $2 = 'revoked' THEN user_id END), $5, $6,
             jsonb_build_object('reason', $3::text) || coalesce($8::jsonb, '{}'::jsonb)
      FROM revoked
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    ), ${endingImpersonationsOf('SELECT id FROM revoked', '$5', '$6')}
    SELECT (SELECT count(*)::int FROM revoked) AS count,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json)
       FROM (SELECT * FROM audit UNION ALL SELECT * FROM impersonations_ended_audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text)
             FROM (SELECT id FROM revoked UNION SELECT id FROM impersonations_ended) ids WHERE $9::boolean) n) AS notified_ids`,
  },

  /**
   * Every session of user $1 but $3; one `revoked` row per session and one `revoked_all`
   * summary. The impersonations those sessions had started end with them.
   */
  revokeAllForUser: {
    name: 'revokeAllForUser',
    text: `
    WITH revoked AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = $2, data = '{}'::jsonb
      WHERE user_id = $1 AND revoked_at IS NULL AND ($3::uuid IS NULL OR id <> $3)
      RETURNING id, user_id, impersonator_id
    ), per_session AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'revoked', id, user_id, coalesce($4, impersonator_id, $1), $5, $6, jsonb_build_object('reason', $2::text)
      FROM revoked
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    ), summary AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'revoked_all', NULL, $1, coalesce($4, $1), $5, $6,
             jsonb_build_object('reason', $2::text, 'count', count(*), 'except', $3::uuid)
      FROM revoked
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    ), ${endingImpersonationsOf('SELECT id FROM revoked', '$5', '$6')}
    SELECT (SELECT count(*)::int FROM revoked) AS count,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json)
       FROM (SELECT * FROM per_session UNION ALL SELECT * FROM summary
             UNION ALL SELECT * FROM impersonations_ended_audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text)
             FROM (SELECT id FROM revoked UNION SELECT id FROM impersonations_ended) ids WHERE $7::boolean) n) AS notified_ids`,
  },
} as const satisfies Record<string, Statement>;
