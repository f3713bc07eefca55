import type { Statement } from './statement.js';
import { pendingBeyond } from '../second-factor/pending-sessions.sql.js';
import { endingImpersonationsOf } from './session-end.sql.js';

/** A login: the new session, with the per-user limit and the guest carry-over around it. Part of SESSION_SQL (session.sql.ts). */
export const CREATE_SQL = {
  /**
   * New session $11 (its id chosen by the caller, who sealed its data to it; $3 NULL: a guest's,
   * audited `guest_created`), of lifetime profile $10, waiting for a second factor when $12
   * (audited with `secondFactorPending`); a token
   * the request already carried ($1) is revoked in the same statement (fixation). When that
   * token was a guest's, its end is audited `guest_upgraded` with both session ids instead
   * (the caller carried its data over in $4). With $9 (a per-user limit, evict-oldest), the
   * user's oldest live sessions beyond the newest $9 - 1 are revoked too (never an admin's
   * impersonation of the user); the caller holds the user's advisory lock. Pending sessions neither
   * count nor evict (the limit applies when one completes); a pending one evicts the user's oldest
   * pending ones beyond the newest $13 - 1. The impersonations a
   * replaced or evicted session had started end with it.
   */
  create: {
    name: 'create',
    text: `
    WITH replaced AS (
      UPDATE user_sessions
      SET revoked_at = now(), data = '{}'::jsonb,
          revoke_reason = CASE WHEN user_id IS NULL THEN 'guest_upgraded' ELSE 'fixation' END
      WHERE $1::bytea IS NOT NULL AND (token_hash = $1 OR previous_token_hash = $1) AND revoked_at IS NULL
      RETURNING id, user_id, impersonator_id
    ), replaced_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'revoked', id, user_id, coalesce(impersonator_id, $3), $7, $8, '{"reason":"fixation"}'::jsonb FROM replaced WHERE user_id IS NOT NULL
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    ), evicted AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'limit_evicted', data = '{}'::jsonb
      WHERE id IN (
        SELECT id FROM user_sessions
        WHERE $9::int IS NOT NULL AND user_id = $3 AND impersonator_id IS NULL AND NOT second_factor_pending AND NOT $12
          AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
          AND ($1::bytea IS NULL OR (token_hash <> $1 AND previous_token_hash IS DISTINCT FROM $1))
        ORDER BY created_at DESC, id DESC
        OFFSET greatest($9::int - 1, 0))
        OR id IN (${pendingBeyond('$3', '$13', 'AND $12 AND ($1::bytea IS NULL OR (token_hash <> $1 AND previous_token_hash IS DISTINCT FROM $1))')})
      RETURNING id, user_id
    ), evicted_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'revoked', id, user_id, $3, $7, $8, '{"reason":"limit_evicted"}'::jsonb FROM evicted
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    ), ${endingImpersonationsOf('SELECT id FROM replaced UNION ALL SELECT id FROM evicted', '$7', '$8')}, created AS (
      INSERT INTO user_sessions (id, token_hash, user_id, data, idle_expires_at, absolute_expires_at, ip, user_agent, lifetime,
                                 second_factor_pending)
      VALUES ($11::uuid, $2, $3, $4::jsonb, now() + $5 * interval '1 millisecond', now() + $6 * interval '1 millisecond', $7, $8, $10,
              $12)
      RETURNING id, user_id, data, created_at, last_seen_at, authenticated_at, idle_expires_at,
                absolute_expires_at, rotated_at, revoked_at, ip, user_agent, version, lifetime, impersonator_id,
                impersonator_session_id, second_factor_pending, now() AS db_now
    ), created_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT CASE WHEN user_id IS NULL THEN 'guest_created' ELSE 'created' END, id, user_id, user_id, ip, user_agent,
             CASE WHEN lifetime = 'default' THEN '{}'::jsonb ELSE jsonb_build_object('lifetime', lifetime) END
               || CASE WHEN second_factor_pending THEN '{"secondFactorPending":true}'::jsonb ELSE '{}'::jsonb END
      FROM created
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    ), upgraded_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'guest_upgraded', r.id, c.user_id, c.user_id, $7, $8,
             jsonb_build_object('guestSessionId', r.id, 'sessionId', c.id)
      FROM replaced r CROSS JOIN created c WHERE r.user_id IS NULL
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    )
    SELECT *,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json)
       FROM (SELECT * FROM replaced_audit UNION ALL SELECT * FROM evicted_audit UNION ALL SELECT * FROM created_audit
             UNION ALL SELECT * FROM upgraded_audit UNION ALL SELECT * FROM impersonations_ended_audit) a)
        AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text)
             FROM (SELECT id FROM replaced UNION SELECT id FROM evicted UNION SELECT id FROM impersonations_ended) ids
             WHERE $14::boolean) n) AS notified_ids
    FROM created`,
  },

  /**
   * Per-user session limit: serialises logins of one user (transaction-scoped). The key
   * space 1852863282 is 0x6e707332, 'nps2'; the purge and the migrations use others.
   */
  lockUserSessions: {
    name: 'lockUserSessions',
    text: `SELECT pg_advisory_xact_lock(1852863282, hashtext($1))`,
  },

  /**
   * At a login that carries a token ($1): the live guest session it belongs to, locked until the
   * login's transaction ends, so a guest write racing the login either lands before its data is
   * carried or finds the session revoked (never lost in between).
   */
  lockGuestByToken: {
    name: 'lockGuestByToken',
    text: `
    SELECT id, data FROM user_sessions
    WHERE (token_hash = $1 OR previous_token_hash = $1) AND user_id IS NULL
      AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
    LIMIT 1
    FOR UPDATE`,
  },

  /**
   * Live sessions of a user, not counting the one a login is about to replace ($2, fixation),
   * nor an admin's impersonation of the user (support must not lock the user out, nor be evicted by them).
   */
  countLiveForUser: {
    name: 'countLiveForUser',
    text: `
    SELECT count(*)::int AS count FROM user_sessions
    WHERE user_id = $1 AND impersonator_id IS NULL AND NOT second_factor_pending
      AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
      AND ($2::bytea IS NULL OR (token_hash <> $2 AND previous_token_hash IS DISTINCT FROM $2))`,
  },

  /** The login transaction (lockUserSessions, countLiveForUser, lockGuestByToken, create). */
  begin: { name: 'begin', text: 'BEGIN' },
  commit: { name: 'commit', text: 'COMMIT' },
} as const satisfies Record<string, Statement>;
