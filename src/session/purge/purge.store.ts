import type { Pool, PoolClient } from 'pg';
import { AUDIT_RECORD_COLUMNS, toAuditRecord, type SessionAuditRecord } from '../audit/audit-record.js';
import {
  INVALIDATE_ALL,
  INVALIDATION_CHANNEL,
  isConnectionError,
  StoreUnavailableError,
  type SessionChangeSink,
} from '../store/session.store.js';

/** Advisory lock key of the purge ('npsp'); the migration lock uses another one. */
export const PURGE_LOCK_KEY = 0x6e70_7370;

/**
 * Deletes at most $1 expired sessions, oldest deadline first, and writes one `purged` audit
 * row per deleted session in the same statement; with $2 true it also returns those rows
 * (for SessionEvents observers; not shipped when nobody listens). Two ordered passes (idle, then absolute)
 * rather than one `idle <= now() OR absolute <= now()`: each pass is a plain range scan of
 * its own index that stops after $1 rows, and the index entries of rows deleted by earlier
 * batches are marked dead by the scan, so batch N costs as much as batch 1. An OR would
 * be a BitmapOr that collects every expired row of both indexes on every batch (or a
 * sequential scan wading through the dead rows of earlier batches).
 * SKIP LOCKED: a row a request is deleting or updating right now is left for the next
 * run, so the purge never waits on request traffic; live rows are never locked at all.
 * Revoked tombstones need no clause of their own: they are kept until these deadlines.
 * A batch that deleted anything tells every instance's cache to flush ('*'), in the same
 * statement: one notice instead of one per row (see INVALIDATION_CHANNEL).
 */
function purgeExpiredBy(deadline: 'idle_expires_at' | 'absolute_expires_at', notify = true): string {
  return `
    WITH gone AS (
      DELETE FROM user_sessions
      WHERE id = ANY (ARRAY(
        SELECT id FROM user_sessions
        WHERE ${deadline} <= now()
        ORDER BY ${deadline}
        LIMIT $1
        FOR UPDATE SKIP LOCKED))
      RETURNING id, user_id, idle_expires_at, absolute_expires_at, revoked_at, revoke_reason
    ), audit AS (
      INSERT INTO session_audit_log (event, session_id, user_id, details)
      SELECT 'purged', id, user_id, jsonb_strip_nulls(jsonb_build_object(
        'expiry', CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
                       WHEN absolute_expires_at <= idle_expires_at THEN 'absolute'
                       ELSE 'idle' END,
        'expiredAt', LEAST(idle_expires_at, absolute_expires_at),
        'revokedAt', revoked_at,
        'reason', revoke_reason))
      FROM gone
      RETURNING ${AUDIT_RECORD_COLUMNS}
    )
    SELECT (SELECT count(*)::int FROM gone) AS deleted,
           CASE WHEN $2 THEN (SELECT json_agg(a ORDER BY a.id::bigint) FROM audit a) END AS audit_rows,
           ${notify ? `(SELECT count(*) FROM (SELECT pg_notify('${INVALIDATION_CHANNEL}', '${INVALIDATE_ALL}') WHERE EXISTS (SELECT 1 FROM gone)) n)` : '0'} AS notified`;
}

/** Every statement the purge sends, in one place (the session SQL lives in store/session.store.ts). */
export const PURGE_SQL = {
  /** Taken once per run on the purge's own connection; other instances skip instead of waiting. */
  tryLock: `SELECT pg_try_advisory_lock($1) AS locked`,
  unlock: `SELECT pg_advisory_unlock($1) AS unlocked`,
  /**
   * Server-side limits for this connection while it purges: a batch is short, and a
   * table lock held by someone else (a migration) ends the run instead of queueing
   * request traffic behind the purge's own lock request.
   */
  setLimits: `SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false)`,
  resetLimits: `RESET statement_timeout; RESET lock_timeout`,

  purgeIdleExpired: purgeExpiredBy('idle_expires_at'),
  purgeAbsoluteExpired: purgeExpiredBy('absolute_expires_at'),
  /** The same, without the NOTIFY (`cache.notify` off: no instance caches). */
  purgeIdleExpiredQuietly: purgeExpiredBy('idle_expires_at', false),
  purgeAbsoluteExpiredQuietly: purgeExpiredBy('absolute_expires_at', false),

  /** Audit rows past the retention ($1 ms), oldest first, $2 at a time (backward scan of the time index). */
  purgeOldAuditRows: `
    WITH gone AS (
      DELETE FROM session_audit_log
      WHERE id = ANY (ARRAY(
        SELECT id FROM session_audit_log
        WHERE occurred_at < now() - $1 * interval '1 millisecond'
        ORDER BY occurred_at, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED))
      RETURNING 1
    )
    SELECT count(*)::int AS deleted FROM gone`,

  /**
   * Claims a scheduled tick ($1, the instant the cron was due) for this instance ($2): a row
   * comes back for the one instance whose INSERT got there first, none for the others. Sent
   * after tryLock, on the same connection (see SessionPurgeService.run for why that order).
   */
  claimTick: `
    INSERT INTO session_purge_runs (tick, instance) VALUES ($1, $2)
    ON CONFLICT (tick) DO NOTHING
    RETURNING tick`,
  /** What the claimed tick's run did, or why it failed ($4), when it ended. */
  finishTick: `
    UPDATE session_purge_runs
    SET finished_at = now(), sessions_deleted = $2, audit_rows_deleted = $3, error = $4
    WHERE tick = $1`,
  /** Claims older than $1 ms, in one statement: a few rows per run (one per tick), by the primary key. */
  purgeOldTicks: `
    WITH gone AS (DELETE FROM session_purge_runs WHERE tick < now() - $1 * interval '1 millisecond' RETURNING 1)
    SELECT count(*)::int AS deleted FROM gone`,
} as const;

/** The statement of each expiry pass, with and without the NOTIFY to caches. */
const EXPIRY_PASSES = { idle: PURGE_SQL.purgeIdleExpired, absolute: PURGE_SQL.purgeAbsoluteExpired } as const;
const QUIET_EXPIRY_PASSES = {
  idle: PURGE_SQL.purgeIdleExpiredQuietly,
  absolute: PURGE_SQL.purgeAbsoluteExpiredQuietly,
} as const;

/** How long session_purge_runs keeps a tick's row: a week of history for whoever investigates. */
export const PURGE_RUNS_RETENTION_MS = 7 * 86_400_000;

const STATEMENT_TIMEOUT = '60s';
const LOCK_TIMEOUT = '2s';

export type ExpiryPass = 'idle' | 'absolute';

/**
 * One connection held for a whole purge run. The advisory lock is session-level on this
 * connection: it is held across batches (so exactly one instance runs at a time, start to
 * end) and Postgres drops it by itself when the connection ends, i.e. when the purging
 * process dies. Batches are separate autocommit statements, so each is its own short
 * transaction and no lock on any row outlives its batch.
 */
export class PurgeConnection {
  private broken = false;
  /**
   * A checked-out pg client has no error listener of the pool's, and one that loses its
   * server between two batches emits 'error': unheard, that would crash the process.
   */
  private readonly onError = () => {
    this.broken = true;
  };

  constructor(
    private readonly client: PoolClient,
    private readonly changes?: SessionChangeSink,
    private readonly notify = true,
  ) {
    client.on('error', this.onError);
  }

  /** False when another connection (another instance) holds the purge lock. Never waits. */
  async tryLock(): Promise<boolean> {
    const [row] = await this.query(PURGE_SQL.tryLock, [PURGE_LOCK_KEY]);
    if (row.locked) await this.query(PURGE_SQL.setLimits, [STATEMENT_TIMEOUT, LOCK_TIMEOUT]);
    return row.locked;
  }

  /** Deletes one batch; `auditRows` are the `purged` rows written, when asked for. */
  async purgeExpiredSessions(
    pass: ExpiryPass,
    batchSize: number,
    withAuditRows: boolean,
  ): Promise<{ deleted: number; auditRows: SessionAuditRecord[] }> {
    const [row] = await this.query((this.notify ? EXPIRY_PASSES : QUIET_EXPIRY_PASSES)[pass], [
      batchSize,
      withAuditRows,
    ]);
    if (row.deleted > 0) this.changes?.evictAll();
    return { deleted: row.deleted, auditRows: (row.audit_rows ?? []).map(toAuditRecord) };
  }

  /** True when this connection claimed the tick, false when another instance already had. */
  async claimTick(tick: Date, instance: string): Promise<boolean> {
    const rows = await this.query(PURGE_SQL.claimTick, [tick, instance]);
    return rows.length === 1;
  }

  async finishTick(
    tick: Date,
    outcome: { sessionsDeleted: number; auditRowsDeleted: number; error?: string },
  ): Promise<void> {
    await this.query(PURGE_SQL.finishTick, [
      tick,
      outcome.sessionsDeleted,
      outcome.auditRowsDeleted,
      outcome.error ?? null,
    ]);
  }

  async purgeOldTicks(retentionMs: number): Promise<number> {
    const [row] = await this.query(PURGE_SQL.purgeOldTicks, [retentionMs]);
    return row.deleted;
  }

  async purgeOldAuditRows(retentionMs: number, batchSize: number): Promise<number> {
    const [row] = await this.query(PURGE_SQL.purgeOldAuditRows, [retentionMs, batchSize]);
    return row.deleted;
  }

  /**
   * Gives the connection back to the pool, unlocked and with default limits. If that cannot
   * be confirmed, the connection is destroyed instead: a pooled connection must never keep
   * the purge lock, or no instance would purge again until it closed.
   */
  async release(locked: boolean): Promise<void> {
    let clean = !this.broken;
    if (clean && locked) {
      try {
        const [row] = await this.query(PURGE_SQL.unlock, [PURGE_LOCK_KEY]);
        await this.client.query(PURGE_SQL.resetLimits);
        clean = row.unlocked === true;
      } catch {
        clean = false;
      }
    }
    this.client.removeListener('error', this.onError); // the pool puts its own listener back
    this.client.release(clean ? undefined : true);
  }

  private async query(text: string, values: unknown[]) {
    try {
      return (await this.client.query(text, values)).rows;
    } catch (error) {
      // Unreachable, or busy (lock timeout, statement timeout): the run ends, the next tick retries.
      if (this.broken || isConnectionError(error))
        throw new StoreUnavailableError((error as Error).message, { cause: error });
      throw error;
    }
  }
}

export class PurgeStore {
  /** `notify`: announce purged batches to caches (`cache.notify`); on by default (the CLI cannot know the fleet). */
  constructor(
    private readonly pool: Pool,
    private readonly changes?: SessionChangeSink,
    private readonly notify = true,
  ) {}

  async connect(): Promise<PurgeConnection> {
    try {
      return new PurgeConnection(await this.pool.connect(), this.changes, this.notify);
    } catch (error) {
      throw new StoreUnavailableError((error as Error).message, { cause: error });
    }
  }
}
