import type { Statement } from '../store/statement.js';

/**
 * The statements of impersonation (conventions as in store/session.sql.ts: database clock,
 * durations in ms, the audit row in the same statement, NOTIFY gated by the last parameter).
 * An impersonation session is a user_sessions row of the target user with `impersonator_id`
 * (the admin) and `impersonator_session_id` (the admin's own session, left live underneath).
 */
export const IMPERSONATION_SQL = {
  /**
   * From the admin's live, real session $1 (not itself an impersonation), a session of user $3
   * with token hash $2, the admin's lifetime profile, idle timeout $4 and an absolute end of
   * $5 ms from now, never past the admin session's own. Audited `impersonation_started`, with
   * the reason ($8) and both session ids. The admin's own token leaves the client with either
   * transport: it is retired here (as by a manual rotation: no grace, its reuse is theft; the
   * newest $10 retired hashes kept) and the session gets hash $9, which no client holds, until
   * stopImpersonation gives it a new token. Its idle deadline is renewed with the
   * impersonation's, which ends no later than it (the lookup's IMPERSONATOR_END). NOTIFY ($11)
   * for the admin's session. No row: the admin session is not live or impersonates.
   */
  startImpersonation: {
    name: 'startImpersonation',
    text: `
    WITH impersonator AS (
      SELECT id, user_id, lifetime, absolute_expires_at, token_hash, token_generation FROM user_sessions
      WHERE id = $1 AND user_id IS NOT NULL AND impersonator_session_id IS NULL AND NOT second_factor_pending
        AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
      FOR UPDATE
    ), withdrawn AS (
      UPDATE user_sessions s
      SET previous_token_hash = NULL, token_hash = $9, token_generation = s.token_generation + 1, rotated_at = now(),
          idle_expires_at = greatest(s.idle_expires_at, least(now() + $4 * interval '1 millisecond', s.absolute_expires_at)),
          version = s.version + 1
      FROM impersonator i WHERE s.id = i.id
      RETURNING s.id, s.user_id, s.version, s.token_generation
    ), retired AS (
      INSERT INTO session_retired_tokens (token_hash, session_id, token_generation, retired_at)
      SELECT token_hash, id, token_generation, now() FROM impersonator
    ), forgotten AS (
      DELETE FROM session_retired_tokens
      WHERE session_id IN (SELECT id FROM impersonator)
        AND token_generation < (SELECT token_generation FROM impersonator) + 1 - $10::int
    ), created AS (
      INSERT INTO user_sessions (token_hash, user_id, data, idle_expires_at, absolute_expires_at, ip, user_agent, lifetime,
                                 impersonator_id, impersonator_session_id)
      SELECT $2, $3, '{}'::jsonb, least(now() + $4 * interval '1 millisecond', i.absolute_expires_at),
             least(now() + $5 * interval '1 millisecond', i.absolute_expires_at), $6, $7, i.lifetime, i.user_id, i.id
      FROM impersonator i
      RETURNING id, user_id, data, created_at, last_seen_at, authenticated_at, idle_expires_at,
                absolute_expires_at, rotated_at, revoked_at, ip, user_agent, version, lifetime, impersonator_id,
                impersonator_session_id, now() AS db_now
    ), audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'impersonation_started', id, user_id, impersonator_id, ip, user_agent,
             jsonb_build_object('reason', $8::text, 'sessionId', id, 'impersonatorSessionId', impersonator_session_id,
                                'expiresAt', absolute_expires_at)
      FROM created
      UNION ALL
      SELECT 'rotated', id, user_id, user_id, $6, $7,
             jsonb_build_object('reason', 'impersonation_started', 'version', version, 'generation', token_generation)
      FROM withdrawn
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    )
    SELECT *,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json) FROM (SELECT * FROM audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text) FROM withdrawn WHERE $11::boolean) n) AS notified_ids
    FROM created`,
  },

  /**
   * Ends impersonation session $1 (revoked 'impersonation_stopped', audited
   * `impersonation_ended` with the admin as actor) and, when the admin's own session is still
   * live, gives it token hash $2 in the same statement: its old token is retired (as by a
   * manual rotation: no grace, and its reuse is theft), its idle deadline renewed ($5 ms), the
   * rotation audited. The one row holds `ended` (false: $1 was no live impersonation session)
   * and the admin's session, its columns null when that session is no longer live.
   */
  stopImpersonation: {
    name: 'stopImpersonation',
    text: `
    WITH ended AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'impersonation_stopped', data = '{}'::jsonb
      WHERE id = $1 AND impersonator_session_id IS NOT NULL AND revoked_at IS NULL
      RETURNING id, user_id, impersonator_id, impersonator_session_id
    ), ended_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'impersonation_ended', id, user_id, impersonator_id, $3, $4,
             jsonb_build_object('reason', 'stopped', 'sessionId', id, 'impersonatorSessionId', impersonator_session_id)
      FROM ended
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    ), impersonator AS (
      SELECT id, token_hash, token_generation FROM user_sessions
      WHERE id = (SELECT impersonator_session_id FROM ended)
        AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
      FOR UPDATE
    ), returned AS (
      UPDATE user_sessions s
      SET previous_token_hash = NULL, token_hash = $2, token_generation = s.token_generation + 1,
          rotated_at = now(), last_seen_at = now(), idle_expires_at = now() + $5 * interval '1 millisecond',
          version = s.version + 1
      FROM impersonator i WHERE s.id = i.id
      RETURNING s.id, s.user_id, s.data, s.created_at, s.last_seen_at, s.authenticated_at, s.idle_expires_at,
                s.absolute_expires_at, s.rotated_at, s.revoked_at, s.ip, s.user_agent, s.version, s.token_generation,
                s.lifetime, s.impersonator_id, s.impersonator_session_id, now() AS db_now
    ), retired AS (
      INSERT INTO session_retired_tokens (token_hash, session_id, token_generation, retired_at)
      SELECT token_hash, id, token_generation, now() FROM impersonator
    ), forgotten AS (
      DELETE FROM session_retired_tokens
      WHERE session_id IN (SELECT id FROM impersonator)
        AND token_generation < (SELECT token_generation FROM impersonator) + 1 - $6::int
    ), rotated_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'rotated', id, user_id, user_id, $3, $4,
             jsonb_build_object('reason', 'impersonation_ended', 'version', version, 'generation', token_generation)
      FROM returned
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    )
    SELECT (SELECT count(*)::int FROM ended) = 1 AS ended, r.*,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json)
       FROM (SELECT * FROM ended_audit UNION ALL SELECT * FROM rotated_audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text)
             FROM (SELECT id FROM ended UNION SELECT id FROM returned) ids WHERE $7::boolean) n) AS notified_ids
    FROM (SELECT) one LEFT JOIN returned r ON true`,
  },
} as const satisfies Record<string, Statement>;
