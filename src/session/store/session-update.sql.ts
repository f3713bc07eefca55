import type { Statement } from './statement.js';

/** Changes to a live session: a new token, its data, its client. Part of SESSION_SQL (session.sql.ts). */
export const UPDATE_SQL = {
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
} as const satisfies Record<string, Statement>;
