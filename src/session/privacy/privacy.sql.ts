import { AUDIT_RECORD_COLUMNS } from '../audit/audit-record.js';
import type { Statement } from '../store/statement.js';
import { STRIP_PERSONAL_DATA } from './personal-details.js';

/**
 * The guest sessions that became user $1's at a login (`guest_upgraded` rows name them): the
 * visitor was the same person, so their rows are the user's personal data too.
 */
const GUESTS_OF_USER = `
    guests AS (
      SELECT DISTINCT (details->>'guestSessionId')::uuid AS id FROM session_audit_log
      WHERE user_id = $1 AND event = 'guest_upgraded' AND details ? 'guestSessionId'
    )`;

/**
 * The keys (`at`, `key_id`) of the audit rows about user $1: theirs, caused by them (as admin or
 * impersonator), or of a guest session that became theirs. One branch per index (user, actor,
 * session): written as one OR, Postgres scans every partition whole (measured: 0.65 s on 1M rows
 * against a few ms). `limit`: each branch stops there, newest first (the export).
 */
function auditKeysOfUser(limit = ''): string {
  const branch = (where: string) =>
    `(SELECT occurred_at AS at, id AS key_id FROM session_audit_log WHERE ${where}` +
    (limit ? ` ORDER BY occurred_at DESC, id DESC LIMIT ${limit})` : ')');
  return [branch('user_id = $1'), branch('actor_id = $1'), branch('session_id IN (SELECT id FROM guests)')].join(
    '\n      UNION ',
  );
}

/** Only the user's own rows and their guest sessions' (mode 'delete'): the first and last branch above. */
const OWN_AUDIT_KEYS = `(SELECT occurred_at AS at, id AS key_id FROM session_audit_log WHERE user_id = $1)
      UNION (SELECT occurred_at, id FROM session_audit_log WHERE session_id IN (SELECT id FROM guests))`;

/**
 * The ids of every session row holding user $1's personal data: theirs (live or a revoked
 * tombstone), their guest sessions before login, and the impersonation sessions they started as
 * an admin (found by their `impersonation_started` rows, by index, rather than by scanning
 * impersonator_id). One indexed branch each.
 */
const SESSION_IDS_OF_USER = `SELECT id FROM user_sessions WHERE user_id = $1
    UNION
    SELECT id FROM user_sessions WHERE user_id IS NULL AND id IN (SELECT id FROM guests)
    UNION
    SELECT id FROM user_sessions
    WHERE impersonator_id = $1
      AND id IN (SELECT session_id FROM session_audit_log WHERE actor_id = $1 AND event = 'impersonation_started')`;

/**
 * The statements of SessionPrivacyStore (erasure and access, GDPR Art. 17 and 15). The erasure
 * runs them in one transaction, after the user's advisory lock (SESSION_SQL.lockUserSessions).
 * None is prepared (they are not on the hot path), so they work behind a transaction pooler.
 */
export const PRIVACY_SQL = {
  /** The sessions erasure deletes (SESSION_IDS_OF_USER). */
  sessionIdsOfUser: {
    name: 'sessionIdsOfUser',
    text: `
    WITH ${GUESTS_OF_USER}
    ${SESSION_IDS_OF_USER}`,
  },

  /**
   * Ends every live impersonation of user $1 as a revocation of it does (revoked 'user_erased',
   * audited `impersonation_ended` with the admin as actor; the admin's own session is left as
   * it is), so the erasure that then deletes the session leaves the admin's trail complete. The
   * row is about user $1: the audit step anonymises or deletes it with their others.
   */
  endImpersonationsOfUser: {
    name: 'endImpersonationsOfUser',
    text: `
    WITH ended AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'user_erased', data = '{}'::jsonb
      WHERE user_id = $1 AND impersonator_session_id IS NOT NULL AND revoked_at IS NULL
      RETURNING id, user_id, impersonator_id, impersonator_session_id
    ), audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
      SELECT 'impersonation_ended', id, user_id, impersonator_id, NULL, NULL,
             jsonb_build_object('reason', 'user_erased', 'sessionId', id, 'impersonatorSessionId', impersonator_session_id)
      FROM ended
      RETURNING ${AUDIT_RECORD_COLUMNS}
    )
    SELECT count(*)::int AS count FROM audit`,
  },

  /** The retired token hashes of sessions $1 (the cascade would delete them too, uncounted). */
  deleteRetiredTokens: {
    name: 'deleteRetiredTokens',
    text: `
    WITH gone AS (DELETE FROM session_retired_tokens WHERE session_id = ANY($1::uuid[]) RETURNING 1)
    SELECT count(*)::int AS count FROM gone`,
  },

  /**
   * Deletes sessions $2 and any other of user $1 (one that appeared since sessionIdsOfUser; run
   * again as the erasure's last statement for a login that committed meanwhile), announcing each on the invalidation channel when $3 (as SESSION_SQL does), so caches drop
   * them and sockets on them close, on every instance, when the transaction commits.
   */
  deleteSessions: {
    name: 'deleteSessions',
    text: `
    WITH gone AS (
      DELETE FROM user_sessions WHERE user_id = $1 OR id = ANY($2::uuid[]) RETURNING id
    )
    SELECT (SELECT coalesce(json_agg(id), '[]'::json) FROM gone) AS ids,
      (SELECT coalesce(json_agg(n.id), '[]'::json)
       FROM (SELECT id, pg_notify('nest_pg_session', id::text) FROM gone WHERE $3::boolean) n) AS notified_ids`,
  },

  /**
   * Mode 'anonymise': every row about user $1 loses its address, user agent and the personal
   * fields of details; user $1 becomes pseudonym $2 wherever they are the subject or the actor.
   */
  anonymiseAudit: {
    name: 'anonymiseAudit',
    text: `
    WITH ${GUESTS_OF_USER}, targets AS (
      ${auditKeysOfUser()}
    ), anonymised AS (
      UPDATE session_audit_log l
      SET user_id = CASE WHEN user_id = $1 THEN $2 ELSE user_id END,
          actor_id = CASE WHEN actor_id = $1 THEN $2 ELSE actor_id END,
          ${STRIP_PERSONAL_DATA}
      FROM targets t WHERE l.occurred_at = t.at AND l.id = t.key_id
      RETURNING 1
    )
    SELECT (SELECT count(*)::int FROM anonymised) AS anonymised, 0 AS deleted`,
  },

  /**
   * Mode 'delete': the rows of user $1 and of their guest sessions go. Rows about other users
   * that user $1 caused (as an admin) are part of those users' history: they stay, anonymised
   * as above, with pseudonym $2 as actor.
   */
  deleteAudit: {
    name: 'deleteAudit',
    text: `
    WITH ${GUESTS_OF_USER}, targets AS (
      ${OWN_AUDIT_KEYS}
    ), deleted AS (
      DELETE FROM session_audit_log l USING targets t
      WHERE l.occurred_at = t.at AND l.id = t.key_id
      RETURNING 1
    ), anonymised AS (
      UPDATE session_audit_log
      SET actor_id = $2, ${STRIP_PERSONAL_DATA}
      WHERE actor_id = $1 AND user_id IS DISTINCT FROM $1
        AND (session_id IS NULL OR session_id NOT IN (SELECT id FROM guests))
      RETURNING 1
    )
    SELECT (SELECT count(*)::int FROM anonymised) AS anonymised, (SELECT count(*)::int FROM deleted) AS deleted`,
  },

  /** The erasure's own row: subject pseudonym $1, actor $2 (the eraser), the eraser's request $3/$4, counts and mode $5. */
  recordErasure: {
    name: 'recordErasure',
    text: `
    INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
    VALUES ('personal_data_erased', NULL, $1, $2, $3, $4, $5::jsonb)
    RETURNING ${AUDIT_RECORD_COLUMNS}`,
  },

  /**
   * The export: user $1's session rows (the same set erasure deletes), newest first, at most
   * $2. Never a token hash. Mapped by the store's toSessionRow, like every session read.
   */
  sessionsOfUser: {
    name: 'sessionsOfUser',
    text: `
    WITH ${GUESTS_OF_USER}, ids AS (
      ${SESSION_IDS_OF_USER}
    )
    SELECT id, user_id, data, created_at, last_seen_at, authenticated_at, idle_expires_at,
           absolute_expires_at, rotated_at, revoked_at, revoke_reason, ip, user_agent, version, lifetime,
           impersonator_id, impersonator_session_id, second_factor_pending
    FROM user_sessions
    WHERE id IN (SELECT id FROM ids)
    ORDER BY created_at DESC, id DESC
    LIMIT $2`,
  },

  /** The export: audit rows about user $1 (the same set erasure anonymises), newest first, at most $2. */
  auditOfUser: {
    name: 'auditOfUser',
    text: `
    WITH ${GUESTS_OF_USER}, keys AS (
      ${auditKeysOfUser('$2')}
    )
    SELECT ${AUDIT_RECORD_COLUMNS}
    FROM session_audit_log l JOIN keys k ON l.occurred_at = k.at AND l.id = k.key_id
    ORDER BY l.occurred_at DESC, l.id DESC
    LIMIT $2`,
  },
} as const satisfies Record<string, Statement>;
