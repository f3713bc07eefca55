import type { Statement } from '../store/statement.js';

/**
 * Every statement the purge sends, each complete as it runs (the session SQL lives in
 * store/session.sql.ts). One PurgeConnection sends them all, each in a transaction of its own
 * that starts with beginStep: no session state, so they work behind a transaction pooler.
 *
 * purgeIdleExpired and purgeAbsoluteExpired delete at most $1 expired sessions, oldest
 * deadline first, and write one `purged` audit row per deleted session in the same statement;
 * with $2 true they also return those rows (for SessionEvents observers; not shipped when
 * nobody listens). Two ordered passes (idle, then absolute) rather than one `idle <= now() OR
 * absolute <= now()`: each pass is a plain range scan of its own index that stops after $1
 * rows, and the index entries of rows deleted by earlier batches are marked dead by the scan,
 * so batch N costs as much as batch 1. An OR would be a BitmapOr that collects every expired
 * row of both indexes on every batch (or a sequential scan wading through the dead rows of
 * earlier batches). SKIP LOCKED: a row a request is deleting or updating right now is left for
 * the next run, so the purge never waits on request traffic; live rows are never locked at
 * all. Revoked tombstones need no clause of their own: they are kept until these deadlines.
 * With $3 true (`cache.notify`), a batch that deleted anything tells every instance's cache
 * to flush (INVALIDATE_ALL on INVALIDATION_CHANNEL), in the same statement: one notice
 * instead of one per row. The impersonations a deleted session had started end with it
 * (revoked, audited `impersonation_ended`), as when a request ends that session.
 */
/**
 * The impersonations that sessions in `gone` had started end with them, as in
 * store/session.sql.ts (endingImpersonationsOf), written for batches of hundreds: `= ANY` of an
 * array reads the partial index on impersonator_session_id, whatever the table's statistics
 * (an `IN (SELECT ... FROM gone)` could be planned as a scan of the table per batch).
 */
const IMPERSONATIONS_ENDED = `impersonations_ended AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'impersonator_ended', data = '{}'::jsonb
      WHERE impersonator_session_id = ANY (ARRAY(SELECT id FROM gone)) AND revoked_at IS NULL
        AND id <> ALL (ARRAY(SELECT id FROM gone))
      RETURNING id, user_id, impersonator_id, impersonator_session_id
    ), impersonations_ended_audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, actor_id, details)
      SELECT 'impersonation_ended', id, user_id, impersonator_id,
             jsonb_build_object('reason', 'impersonator_session_ended', 'sessionId', id, 'impersonatorSessionId', impersonator_session_id)
      FROM impersonations_ended
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    )`;

export const PURGE_SQL = {
  /**
   * Takes the purge lease for holder $1 for $2 ms: a row comes back only when nobody holds it,
   * the holder's lease expired (a purger that died), or the holder is $1 itself (a run of the
   * same PurgeStore that could not give it back, e.g. the database went away; a store runs one
   * at a time). Never waits on a running purge: a live lease is seen by the NOT EXISTS without
   * locking its row, which the holder's batch transaction keeps locked (beginStep renews it).
   */
  acquireLease: {
    name: 'acquireLease',
    text: `
    INSERT INTO session_purge_lease AS l (name, holder, expires_at)
    SELECT 'purge', $1, now() + $2 * interval '1 millisecond'
    WHERE NOT EXISTS (SELECT 1 FROM session_purge_lease WHERE name = 'purge' AND expires_at > now() AND holder <> $1)
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = now(), expires_at = excluded.expires_at
    WHERE l.expires_at <= now() OR l.holder = excluded.holder
    RETURNING holder`,
  },
  /**
   * First in each of the purge's transactions: limits for this transaction only (SET LOCAL, so
   * nothing stays on a pooled server connection), and the lease renewed for $4 ms; `held` is
   * false when holder $3 lost it. A batch is short, and a table lock held by someone else (a
   * migration) ends the run instead of queueing request traffic behind the purge's lock request.
   */
  beginStep: {
    name: 'beginStep',
    text: `
    WITH renewed AS (
      UPDATE session_purge_lease SET expires_at = now() + $4 * interval '1 millisecond'
      WHERE name = 'purge' AND holder = $3
      RETURNING 1
    )
    SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true),
           EXISTS (SELECT 1 FROM renewed) AS held`,
  },
  releaseLease: { name: 'releaseLease', text: `DELETE FROM session_purge_lease WHERE name = 'purge' AND holder = $1` },
  purgeBegin: { name: 'purgeBegin', text: 'BEGIN' },
  purgeCommit: { name: 'purgeCommit', text: 'COMMIT' },

  purgeIdleExpired: {
    name: 'purgeIdleExpired',
    text: `
    WITH gone AS (
      DELETE FROM user_sessions
      WHERE id = ANY (ARRAY(
        SELECT id FROM user_sessions
        WHERE idle_expires_at <= now()
        ORDER BY idle_expires_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED))
      RETURNING id, user_id, idle_expires_at, absolute_expires_at, revoked_at, revoke_reason
    ), ${IMPERSONATIONS_ENDED}, audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, details)
      SELECT 'purged', id, user_id, jsonb_strip_nulls(jsonb_build_object(
        'expiry', CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
                       WHEN absolute_expires_at <= idle_expires_at THEN 'absolute'
                       ELSE 'idle' END,
        'expiredAt', LEAST(idle_expires_at, absolute_expires_at),
        'revokedAt', revoked_at,
        'reason', revoke_reason))
      FROM gone
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    )
    SELECT (SELECT count(*)::int FROM gone) AS deleted,
           CASE WHEN $2 THEN (SELECT json_agg(a ORDER BY a.id::bigint)
                              FROM (SELECT * FROM audit UNION ALL SELECT * FROM impersonations_ended_audit) a) END
             AS audit_rows,
           (SELECT count(*) FROM (SELECT pg_notify('nest_pg_session', '*')
                                  WHERE $3::boolean AND EXISTS (SELECT 1 FROM gone)) n) AS notified`,
  },

  purgeAbsoluteExpired: {
    name: 'purgeAbsoluteExpired',
    text: `
    WITH gone AS (
      DELETE FROM user_sessions
      WHERE id = ANY (ARRAY(
        SELECT id FROM user_sessions
        WHERE absolute_expires_at <= now()
        ORDER BY absolute_expires_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED))
      RETURNING id, user_id, idle_expires_at, absolute_expires_at, revoked_at, revoke_reason
    ), ${IMPERSONATIONS_ENDED}, audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, details)
      SELECT 'purged', id, user_id, jsonb_strip_nulls(jsonb_build_object(
        'expiry', CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
                       WHEN absolute_expires_at <= idle_expires_at THEN 'absolute'
                       ELSE 'idle' END,
        'expiredAt', LEAST(idle_expires_at, absolute_expires_at),
        'revokedAt', revoked_at,
        'reason', revoke_reason))
      FROM gone
      RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
    )
    SELECT (SELECT count(*)::int FROM gone) AS deleted,
           CASE WHEN $2 THEN (SELECT json_agg(a ORDER BY a.id::bigint)
                              FROM (SELECT * FROM audit UNION ALL SELECT * FROM impersonations_ended_audit) a) END
             AS audit_rows,
           (SELECT count(*) FROM (SELECT pg_notify('nest_pg_session', '*')
                                  WHERE $3::boolean AND EXISTS (SELECT 1 FROM gone)) n) AS notified`,
  },

  /**
   * Claims a scheduled tick ($1, the instant the cron was due) for this instance ($2): a row
   * comes back for the one instance whose INSERT got there first, none for the others. Sent
   * after acquireLease (see SessionPurgeService.run for why that order).
   */
  claimTick: {
    name: 'claimTick',
    text: `
    INSERT INTO session_purge_runs (tick, instance) VALUES ($1, $2)
    ON CONFLICT (tick) DO NOTHING
    RETURNING tick`,
  },
  /** What the claimed tick's run did, or why it failed ($4), when it ended. */
  finishTick: {
    name: 'finishTick',
    text: `
    UPDATE session_purge_runs
    SET finished_at = now(), sessions_deleted = $2, audit_rows_deleted = $3, error = $4
    WHERE tick = $1`,
  },
  /** Claims older than $1 ms, in one statement: a few rows per run (one per tick), by the primary key. */
  purgeOldTicks: {
    name: 'purgeOldTicks',
    text: `
    WITH gone AS (DELETE FROM session_purge_runs WHERE tick < now() - $1 * interval '1 millisecond' RETURNING 1)
    SELECT count(*)::int AS deleted FROM gone`,
  },
} as const satisfies Record<string, Statement>;
