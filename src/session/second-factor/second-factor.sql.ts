import type { Statement } from '../store/statement.js';

const AUDIT_RETURNING =
  'RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details';

/**
 * The statements of sessions waiting for a second factor (conventions as in store/session.sql.ts:
 * database clock, durations in ms, the audit row in the same statement, NOTIFY gated by a
 * parameter). Each names the session by id AND its current token hash: only the client holding
 * the pending token acts on it, and a pending session never rotates, so that token is current.
 */
export const SECOND_FACTOR_SQL = {
  /**
   * Live pending session $1 with token $2, at most $9 attempts used: gets token $3 (the pending
   * one retired at once, no grace: reuse detection keeps its hash), loses its pending state,
   * counts as authenticated now (`@RequireFreshSession`) and lives its profile's idle ($4 ms) and
   * absolute ($5 ms) timeouts from now. Audited `second_factor_completed`. No row: not pending,
   * not live, or not this token.
   */
  completeSecondFactor: {
    name: 'completeSecondFactor',
    text: `
    WITH completed AS (
      UPDATE user_sessions
      SET token_hash = $3, previous_token_hash = NULL, token_generation = token_generation + 1,
          second_factor_pending = false, second_factor_attempts = 0, authenticated_at = now(),
          rotated_at = now(), last_seen_at = now(), idle_expires_at = now() + $4 * interval '1 millisecond',
          absolute_expires_at = now() + $5 * interval '1 millisecond', version = version + 1
      WHERE id = $1 AND token_hash = $2 AND second_factor_pending AND second_factor_attempts <= $9
        AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
      RETURNING id, user_id, data, created_at, last_seen_at, authenticated_at, idle_expires_at,
                absolute_expires_at, rotated_at, revoked_at, ip, user_agent, version, token_generation, lifetime,
                impersonator_id, impersonator_session_id, second_factor_pending, now() AS db_now
    ), retired AS (
      INSERT INTO session_retired_tokens (token_hash, session_id, token_generation, retired_at)
      SELECT $2, id, token_generation - 1, rotated_at FROM completed
    ), forgotten AS (
      DELETE FROM session_retired_tokens
      WHERE session_id = $1 AND token_generation < (SELECT token_generation FROM completed) - $8::int
    ), audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'second_factor_completed', id, user_id, user_id, $6, $7,
             jsonb_build_object('version', version, 'generation', token_generation) FROM completed
      ${AUDIT_RETURNING}
    )
    SELECT *,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json) FROM (SELECT * FROM audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text) FROM completed WHERE $10::boolean) n) AS notified_ids
    FROM completed`,
  },

  /**
   * Takes one of live pending session $1's (token $2) attempts before the app checks a code, so
   * concurrent guesses cannot outrun the limit: no row when all $3 are taken (or it is not live).
   */
  reserveSecondFactorAttempt: {
    name: 'reserveSecondFactorAttempt',
    text: `
    UPDATE user_sessions SET second_factor_attempts = second_factor_attempts + 1
    WHERE id = $1 AND token_hash = $2 AND second_factor_pending AND second_factor_attempts < $3
      AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
    RETURNING second_factor_attempts AS attempts`,
  },

  /**
   * A failed attempt of live pending session $1 (token $2), counted ($3 = 1) or already reserved
   * ($3 = 0); audited `second_factor_failed` ({ attempts, maxAttempts }). Reaching $4 attempts
   * revokes it (reason 'second_factor_failed', audited `revoked`). One row: `attempts` and
   * `revoked`, both null when the session was no live pending one.
   */
  failSecondFactor: {
    name: 'failSecondFactor',
    text: `
    WITH failed AS (
      UPDATE user_sessions
      SET second_factor_attempts = second_factor_attempts + $3,
          revoked_at = CASE WHEN second_factor_attempts + $3 >= $4 THEN now() END,
          revoke_reason = CASE WHEN second_factor_attempts + $3 >= $4 THEN 'second_factor_failed' END,
          data = CASE WHEN second_factor_attempts + $3 >= $4 THEN '{}'::jsonb ELSE data END
      WHERE id = $1 AND token_hash = $2 AND second_factor_pending
        AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
      RETURNING id, user_id, second_factor_attempts AS attempts, revoked_at IS NOT NULL AS revoked
    ), failed_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'second_factor_failed', id, user_id, user_id, $5, $6,
             jsonb_build_object('attempts', attempts, 'maxAttempts', $4::int) FROM failed
      ${AUDIT_RETURNING}
    ), revoked_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'revoked', id, user_id, user_id, $5, $6, '{"reason":"second_factor_failed"}'::jsonb FROM failed WHERE revoked
      ${AUDIT_RETURNING}
    )
    SELECT f.attempts, f.revoked,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json)
       FROM (SELECT * FROM failed_audit UNION ALL SELECT * FROM revoked_audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text) FROM failed WHERE $7::boolean AND revoked) n) AS notified_ids
    FROM (SELECT) one LEFT JOIN failed f ON true`,
  },
} as const satisfies Record<string, Statement>;
