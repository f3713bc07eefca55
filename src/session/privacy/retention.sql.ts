import type { Statement } from '../store/statement.js';

/**
 * Top-level `details` keys that name an IP address or a user agent: `from`/`to` of `ip_changed`
 * and `ua_changed` rows (and of a `revoked` row with reason `ua_changed`), `user_agents` of the
 * aggregated `invalid_token`/`csrf_failed`/`guest_limited` rows. A new key that holds either
 * belongs here AND in a migration that rebuilds session_audit_log_personal_idx with it.
 */
export const PERSONAL_DETAILS_KEYS = ['from', 'to', 'user_agents'] as const;

/**
 * Rows that still hold personal data, word for word the predicate of session_audit_log_personal_idx
 * (migration AddAuditPersonalDataIndex1796688000001): the planner uses a partial index only for a
 * query whose WHERE repeats it. A cleared row leaves that index, so a run with nothing to clear
 * reads no rows, however large the table.
 */
const HOLDS_PERSONAL_DATA = `(ip IS NOT NULL OR user_agent IS NOT NULL OR details ?| ARRAY['from', 'to', 'user_agents'])`;

export const RETENTION_SQL = {
  /**
   * Clears ip, user_agent and the personal details keys of at most $2 audit rows older than $1
   * ms; the event, times, ids and the other details stay, so security statistics survive. No
   * ORDER BY: any $2 rows will do (a cleared row leaves the index, so the next batch goes on), and
   * without one the partitions' index scans stop after $2 rows instead of sorting the whole
   * backlog on every batch. SKIP LOCKED, as the purge's deletes: a row someone is erasing right
   * now waits for the next batch. The UPDATE finds the batch by id (unique across partitions:
   * one identity) in the primary key's index, and the batch's time bounds prune every partition
   * it does not span; a join on (id, occurred_at) was planned as a hash join over a sequential
   * scan of every partition, per batch. Sent by PurgeConnection.step (own transaction, SET LOCAL
   * limits, lease).
   */
  clearPersonalData: {
    name: 'clearPersonalData',
    text: `
    WITH batch AS MATERIALIZED (
      SELECT id, occurred_at FROM session_audit_log
      WHERE occurred_at < now() - $1 * interval '1 millisecond'
        AND ${HOLDS_PERSONAL_DATA}
      LIMIT $2
      FOR UPDATE SKIP LOCKED
    ), cleared AS (
      UPDATE session_audit_log
      SET ip = NULL, user_agent = NULL, details = details - ARRAY['from', 'to', 'user_agents']
      WHERE id = ANY (ARRAY(SELECT id FROM batch))
        AND occurred_at >= (SELECT min(occurred_at) FROM batch)
        AND occurred_at <= (SELECT max(occurred_at) FROM batch)
      RETURNING 1
    )
    SELECT count(*)::int AS cleared FROM cleared`,
  },
} as const satisfies Record<string, Statement>;
