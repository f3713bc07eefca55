import { endingImpersonationsOf } from '../store/session-end.sql.js';
import type { Statement } from '../store/statement.js';

const AUDIT_RETURNING =
  'RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details';

/** The user's failures in the window ($w ms) plus attempts reserved and not yet decided, for the per-user limit. */
function userFailures(user: string, w: string): string {
  return `(SELECT count(*) FROM session_audit_log
           WHERE user_id = ${user} AND event = 'second_factor_failed' AND occurred_at > now() - ${w} * interval '1 millisecond')
        + (SELECT coalesce(sum(p.second_factor_attempts - (SELECT count(*) FROM session_audit_log a
                                                            WHERE a.session_id = p.id AND a.event = 'second_factor_failed')), 0)
           FROM user_sessions p WHERE p.user_id = ${user} AND p.second_factor_pending AND p.revoked_at IS NULL)`;
}

/** Until the oldest of user `user`'s failures leaves the window ($w ms), at least a second. */
function retryAfterMs(user: string, w: string): string {
  return `greatest(1000, ceil(extract(epoch FROM (
        SELECT min(occurred_at) + ${w} * interval '1 millisecond' - now() FROM session_audit_log
        WHERE user_id = ${user} AND event = 'second_factor_failed' AND occurred_at > now() - ${w} * interval '1 millisecond'
      )) * 1000))::bigint AS retry_after_ms`;
}

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
   * absolute ($5 ms) timeouts from now. Audited `second_factor_completed`. With $10 (sessionLimit,
   * evict-oldest) the user's oldest full sessions beyond the newest $10 - 1 are revoked now, as at
   * a login (pending ones never counted). No row: not pending, not live, or not this token.
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
    ), evicted AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'limit_evicted', data = '{}'::jsonb
      WHERE id IN (
        SELECT s.id FROM user_sessions s JOIN completed c ON s.user_id = c.user_id AND s.id <> c.id
        WHERE $10::int IS NOT NULL AND s.impersonator_id IS NULL AND NOT s.second_factor_pending
          AND s.revoked_at IS NULL AND s.idle_expires_at > now() AND s.absolute_expires_at > now()
        ORDER BY s.created_at DESC, s.id DESC
        OFFSET greatest($10::int - 1, 0))
      RETURNING id, user_id
    ), evicted_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'revoked', id, user_id, user_id, $6, $7, '{"reason":"limit_evicted"}'::jsonb FROM evicted
      ${AUDIT_RETURNING}
    ), ${endingImpersonationsOf('SELECT id FROM evicted', '$6', '$7')}, audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'second_factor_completed', id, user_id, user_id, $6, $7,
             jsonb_build_object('version', version, 'generation', token_generation) FROM completed
      ${AUDIT_RETURNING}
    )
    SELECT *,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json)
       FROM (SELECT * FROM evicted_audit UNION ALL SELECT * FROM impersonations_ended_audit
             UNION ALL SELECT * FROM audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text)
             FROM (SELECT id FROM completed UNION SELECT id FROM evicted UNION SELECT id FROM impersonations_ended) ids
             WHERE $11::boolean) n) AS notified_ids
    FROM completed`,
  },

  /**
   * Ends live pending session $1 (token $2) with reason $3, audited `revoked`: refused at the
   * session limit ('limit_rejected') or past the user's failure limit ('second_factor_locked').
   * `count` 0 when it was no live pending session.
   */
  endPending: {
    name: 'endPending',
    text: `
    WITH ended AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = $3, data = '{}'::jsonb
      WHERE id = $1 AND token_hash = $2 AND second_factor_pending
        AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
      RETURNING id, user_id
    ), audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'revoked', id, user_id, user_id, $4, $5, jsonb_build_object('reason', $3::text) FROM ended
      ${AUDIT_RETURNING}
    )
    SELECT (SELECT count(*)::int FROM ended) AS count,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json) FROM (SELECT * FROM audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text) FROM ended WHERE $6::boolean) n) AS notified_ids`,
  },

  /**
   * Takes one of live pending session $1's (token $2, user $4) attempts before the app checks a
   * code, so concurrent guesses cannot outrun the limits: `attempts` null when all $3 are taken
   * (or it is not live), or when user $4 already has $5 failures (decided or in flight) within
   * $6 ms: then `locked`, with `retry_after_ms` until the oldest of them leaves the window. The
   * caller holds the user's advisory lock (lockUserSessions), taken before this statement's
   * snapshot, so concurrent guesses on the user's other pending sessions see this reservation.
   */
  reserveSecondFactorAttempt: {
    name: 'reserveSecondFactorAttempt',
    text: `
    WITH used AS (
      SELECT ${userFailures('$4', '$6')} AS failures
    ), reserved AS (
      UPDATE user_sessions SET second_factor_attempts = second_factor_attempts + 1
      WHERE id = $1 AND token_hash = $2 AND second_factor_pending AND second_factor_attempts < $3
        AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
        AND (SELECT failures FROM used) < $5
      RETURNING second_factor_attempts AS attempts
    )
    SELECT (SELECT attempts FROM reserved) AS attempts, used.failures >= $5 AS locked, ${retryAfterMs('$4', '$6')}
    FROM used`,
  },

  /**
   * Whether user $1 has $2 failures (decided or in flight) within $3 ms, for a completion the
   * app reports without verifySecondFactor(): `locked` and `retry_after_ms` as the reserve's.
   */
  userSecondFactorLock: {
    name: 'userSecondFactorLock',
    text: `
    SELECT ${userFailures('$1', '$3')} >= $2 AS locked, ${retryAfterMs('$1', '$3')}`,
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
