import type { Statement } from '../store/statement.js';
import { HOLDS_PERSONAL_DATA, STRIP_PERSONAL_DATA } from './personal-details.js';

export const RETENTION_SQL = {
  /**
   * Clears ip, user_agent and the personal details keys of at most $2 audit rows older than $1
   * ms; the event, times, ids and the other details stay, so security statistics survive. No
   * ORDER BY: any $2 rows will do (a cleared row leaves the index, so the next batch goes on), and
   * without one the partitions' index scans stop after $2 rows instead of sorting the whole
   * backlog on every batch; HOLDS_PERSONAL_DATA repeats the partial index's predicate, so a run with
   * nothing to clear reads no rows, however large the table. SKIP LOCKED, as the purge's deletes: a row someone is erasing right
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
      SET ${STRIP_PERSONAL_DATA}
      WHERE id = ANY (ARRAY(SELECT id FROM batch))
        AND occurred_at >= (SELECT min(occurred_at) FROM batch)
        AND occurred_at <= (SELECT max(occurred_at) FROM batch)
      RETURNING 1
    )
    SELECT count(*)::int AS cleared FROM cleared`,
  },
} as const satisfies Record<string, Statement>;
