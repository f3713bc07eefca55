import { pendingBeyond } from '../second-factor/pending-sessions.sql.js';
import type { Statement } from './statement.js';

/**
 * Channel on which every change to a session that a cached copy must not survive is
 * announced (payload: the session id), for the in-process caches of all instances
 * (cache/session-invalidation.listener.ts). pg_notify runs in the statement that makes the
 * change, so the notice is delivered exactly when the change commits, and never without it.
 * Sent when `cache.notify` is on (by default: when this instance caches; a fleet where only
 * some instances cache needs it on everywhere). Never per request, and off without a cache,
 * because Postgres serialises the commits of all notifying transactions on one global queue
 * lock: rotations and data patches of every session would queue behind each other for nothing.
 */
export const INVALIDATION_CHANNEL = 'nest_pg_session';
/** Payload meaning "drop every cached session" (the purge: thousands of ids per batch, all of them expired anyway). */
export const INVALIDATE_ALL = '*';

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

/**
 * When the admin's own session behind impersonation session `s` ends (or ended): its idle or
 * absolute deadline, the moment it was revoked, or now when it is gone (purged, logged out).
 * So an impersonation never outlives the admin's session, whatever ended it.
 */
export const IMPERSONATOR_END = `coalesce((SELECT CASE WHEN a.revoked_at IS NULL THEN least(a.idle_expires_at, a.absolute_expires_at)
                                            ELSE a.revoked_at END
                                  FROM user_sessions a WHERE a.id = s.impersonator_session_id), now())`;

/**
 * Every statement the module sends about sessions, each complete as it runs (as Spring
 * Session's JdbcIndexedSessionRepository keeps them), so a reviewer can check each against
 * the indexes in the migration. Conventions shared by all of them:
 *
 * - Times come from the database (`now()`), so every app instance agrees on expiry.
 *   Durations arrive in milliseconds (`$n * interval '1 millisecond'`).
 * - A live session: `revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at
 *   > now()`, written out the same in every statement that needs it (a unit test checks).
 * - Lifecycle changes write their audit row in the same statement (data-modifying CTEs): no
 *   change without its event, no event without its change. The statement returns the rows
 *   it wrote as one json array (`audit_rows`, with the columns of AUDIT_RECORD_COLUMNS),
 *   emitted to SessionEvents once it has committed.
 * - A statement that changes sessions a cache may hold ends with `notified_ids`: when its
 *   last parameter (`notify`) is true, one pg_notify on INVALIDATION_CHANNEL per changed
 *   session, and the ids, so the store also evicts them locally at once. False: no notice
 *   (the gated subquery is not run) and `[]`. A scalar subquery in the final SELECT: a plain
 *   SELECT inside WITH runs only if the final query reads it, and the volatile pg_notify
 *   column is never pruned from the subquery.
 */
export const SESSION_SQL = {
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
   * Swap in a new token. After a periodic rotation the old one stays in previous_token_hash
   * for the grace window (in-flight requests); after a manual one or a step-up it is dropped
   * at once, so whoever else held it cannot ride the newly elevated session. Either way its
   * hash joins session_retired_tokens (reuse detection, any number of rotations later), and
   * the session's retired hashes beyond the newest $10 are forgotten in the same statement.
   */
  rotate: {
    name: 'rotate',
    text: `
    WITH rotated AS (
      UPDATE user_sessions
      SET previous_token_hash = CASE WHEN $8::text = 'interval' THEN token_hash END, token_hash = $2,
          token_generation = token_generation + 1,
          rotated_at = now(), last_seen_at = now(), idle_expires_at = now() + $4 * interval '1 millisecond',
          version = version + 1, authenticated_at = CASE WHEN $9 THEN now() ELSE authenticated_at END
      WHERE id = $1 AND token_hash = $3 AND NOT second_factor_pending
        AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
      RETURNING id, user_id, data, created_at, last_seen_at, authenticated_at, idle_expires_at,
                absolute_expires_at, rotated_at, revoked_at, ip, user_agent, version, token_generation, lifetime,
                impersonator_id, impersonator_session_id, now() AS db_now
    ), retired AS (
      INSERT INTO session_retired_tokens (token_hash, session_id, token_generation, retired_at)
      SELECT $3, id, token_generation - 1, rotated_at FROM rotated
    ), forgotten AS (
      DELETE FROM session_retired_tokens
      WHERE session_id = $1 AND token_generation < (SELECT token_generation FROM rotated) - $10::int
    ), audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'rotated', id, user_id, coalesce($5, impersonator_id), $6, $7,
             jsonb_build_object('reason', $8::text, 'version', version, 'generation', token_generation) FROM rotated
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    )
    SELECT *,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json) FROM (SELECT * FROM audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text)
             FROM (SELECT id FROM rotated) ids WHERE $11::boolean) n) AS notified_ids
    FROM rotated`,
  },

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

  listForUser: {
    name: 'listForUser',
    text: `
    SELECT id, created_at, last_seen_at, LEAST(idle_expires_at, absolute_expires_at) AS expires_at, ip, user_agent,
           lifetime, impersonator_id, second_factor_pending
    FROM user_sessions
    WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
    ORDER BY created_at DESC, id`,
  },

  /** Per-key merge: concurrent patches of different keys both survive. At most $3 bytes of data. */
  patchData: {
    name: 'patchData',
    text: `
    WITH patched AS (
      UPDATE user_sessions SET data = data || $2::jsonb, version = version + 1
      WHERE id = $1 AND revoked_at IS NULL AND NOT second_factor_pending AND octet_length((data || $2::jsonb)::text) <= $3
      RETURNING id, data
    )
    SELECT data,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text)
             FROM (SELECT id FROM patched) ids WHERE $4::boolean) n) AS notified_ids
    FROM patched`,
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

  /**
   * Client binding as detection: when a request's address or user agent differs from the
   * row's, store the new one and audit the change, all in one statement. Under concurrency
   * the row lock makes it happen once per change: later requests see the updated row.
   */
  recordClientChange: {
    name: 'recordClientChange',
    text: `
    WITH current AS (
      SELECT id, user_id, ip, user_agent, impersonator_id FROM user_sessions WHERE id = $1 AND revoked_at IS NULL FOR UPDATE
    ), changed AS (
      UPDATE user_sessions s SET ip = $2, user_agent = $3
      FROM current c
      WHERE s.id = c.id AND (c.ip IS DISTINCT FROM $2 OR c.user_agent IS DISTINCT FROM $3)
      RETURNING s.id, s.user_id, s.impersonator_id, c.ip AS old_ip, c.user_agent AS old_user_agent
    ), ip_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'ip_changed', id, user_id, impersonator_id, $2, $3, jsonb_build_object('from', old_ip, 'to', $2::text)
      FROM changed WHERE old_ip IS DISTINCT FROM $2
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    ), ua_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'ua_changed', id, user_id, impersonator_id, $4, $3, jsonb_build_object('from', old_user_agent, 'to', $3::text)
      FROM changed WHERE old_user_agent IS DISTINCT FROM $3
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    )
    SELECT old_ip, old_user_agent,
      (SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json)
       FROM (SELECT * FROM ip_audit UNION ALL SELECT * FROM ua_audit) a) AS audit_rows,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text)
             FROM (SELECT id FROM changed) ids WHERE $5::boolean) n) AS notified_ids
    FROM changed`,
  },

  /** Aggregated events (invalid_token, csrf_failed): many rows, one statement, once per window. */
  insertAggregatedEvents: {
    name: 'insertAggregatedEvents',
    text: `
    INSERT INTO session_audit_log (event, session_id, user_id, ip, user_agent, details)
    SELECT r.event, r.session_id, r.user_id, r.ip, r.user_agent, r.details
    FROM jsonb_to_recordset($1::jsonb) AS r(event text, session_id uuid, user_id text, ip text, user_agent text, details jsonb)
    RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details`,
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

  /** The login transaction (lockUserSessions, countLiveForUser, lockGuestByToken, create). */
  begin: { name: 'begin', text: 'BEGIN' },
  commit: { name: 'commit', text: 'COMMIT' },
} as const satisfies Record<string, Statement>;
