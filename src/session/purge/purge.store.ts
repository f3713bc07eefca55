import type { Pool, PoolClient } from 'pg';
import { toAuditRecord, type SessionAuditRecord } from '../audit/audit-record.js';
import { asStoreError, StoreUnavailableError } from '../store/pg-errors.js';
import type { SessionChangeSink } from '../store/session.store.js';
import type { Statement } from '../store/statement.js';
import { AuditPartitions } from './audit-partitions.js';
import { PURGE_SQL } from './purge.sql.js';

/** Advisory lock key of the purge ('npsp'); the migration lock uses another one. */
export const PURGE_LOCK_KEY = 0x6e70_7370;

/** The statement of each expiry pass. */
const EXPIRY_PASSES = { idle: PURGE_SQL.purgeIdleExpired, absolute: PURGE_SQL.purgeAbsoluteExpired } as const;

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
    const [row] = await this.query(EXPIRY_PASSES[pass], [batchSize, withAuditRows, this.notify]);
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

  /** The audit log's day partitions, kept on this connection in transactions of their own. */
  auditPartitions(): AuditPartitions {
    return new AuditPartitions(this.client);
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
        await this.client.query(PURGE_SQL.resetLimits.text);
        clean = row.unlocked === true;
      } catch {
        clean = false;
      }
    }
    this.client.removeListener('error', this.onError); // the pool puts its own listener back
    this.client.release(clean ? undefined : true);
  }

  private async query(statement: Statement, values: unknown[]) {
    try {
      return (await this.client.query(statement.text, values)).rows;
    } catch (error) {
      // Unreachable, or busy (lock timeout, statement timeout): the run ends, the next tick retries.
      throw this.broken ? new StoreUnavailableError((error as Error).message, { cause: error }) : asStoreError(error);
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
