import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Pool, PoolClient } from 'pg';
import { toAuditRecord, type SessionAuditRecord } from '../audit/audit-record.js';
import { asStoreError, StoreUnavailableError } from '../store/pg-errors.js';
import { RETENTION_SQL } from '../privacy/retention.sql.js';
import type { SessionChangeSink } from '../store/session.store.js';
import type { Statement } from '../store/statement.js';
import { AuditPartitions } from './audit-partitions.js';
import { PURGE_SQL } from './purge.sql.js';

/** The statement of each expiry pass. */
const EXPIRY_PASSES = { idle: PURGE_SQL.purgeIdleExpired, absolute: PURGE_SQL.purgeAbsoluteExpired } as const;

/** How long session_purge_runs keeps a tick's row: a week of history for whoever investigates. */
export const PURGE_RUNS_RETENTION_MS = 7 * 86_400_000;

const STATEMENT_TIMEOUT = '60s';
const LOCK_TIMEOUT = '2s';
/**
 * How long the purge lease lasts from its last renewal (each statement of the run renews it):
 * longer than a batch may take (STATEMENT_TIMEOUT), so a live run keeps it, and how long a
 * purger that died keeps the other instances waiting.
 */
export const PURGE_LEASE_MS = 120_000;

export type ExpiryPass = 'idle' | 'absolute';

/** The run's lease passed to another instance (it paused longer than PURGE_LEASE_MS): it stops, the other goes on. */
export class PurgeLeaseLostError extends Error {
  override name = 'PurgeLeaseLostError';
  constructor() {
    super(`purge lease lost to another instance (no renewal within ${PURGE_LEASE_MS} ms)`);
  }
}

/**
 * One pooled connection for a purge run, and no session state on it: one instance at a time is
 * the lease row in session_purge_lease (held from tryLock to release, renewed by every
 * statement), and each statement is a transaction of its own that starts with beginStep (SET
 * LOCAL limits, lease renewal). So a transaction pooler may run each on another server
 * connection, and no lock on any row outlives its batch.
 */
export class PurgeConnection {
  private broken = false;
  private released = false;
  private holder: string | undefined;
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
    /** Who takes the lease: its PurgeStore, so a run can take over one its store could not give back. */
    private readonly defaultHolder = `${hostname()}:${process.pid}:${randomUUID()}`,
  ) {
    client.on('error', this.onError);
  }

  /** False when another purger holds the purge lease. Never waits. */
  async tryLock(holder = this.defaultHolder): Promise<boolean> {
    const rows = await this.query(PURGE_SQL.acquireLease, [holder, PURGE_LEASE_MS]);
    if (rows.length === 1) this.holder = holder;
    return rows.length === 1;
  }

  /** Deletes one batch; `auditRows` are the `purged` rows written, when asked for. */
  async purgeExpiredSessions(
    pass: ExpiryPass,
    batchSize: number,
    withAuditRows: boolean,
  ): Promise<{ deleted: number; auditRows: SessionAuditRecord[] }> {
    const [row] = await this.step(EXPIRY_PASSES[pass], [batchSize, withAuditRows, this.notify]);
    if (row.deleted > 0) this.changes?.evictAll();
    return { deleted: row.deleted, auditRows: (row.audit_rows ?? []).map(toAuditRecord) };
  }

  /** Clears the personal data of one batch of audit rows older than `retentionMs`; how many rows it cleared. */
  async clearPersonalData(retentionMs: number, batchSize: number): Promise<number> {
    const [row] = await this.step(RETENTION_SQL.clearPersonalData, [retentionMs, batchSize]);
    return row.cleared;
  }

  /** True when this connection claimed the tick, false when another instance already had. */
  async claimTick(tick: Date, instance: string): Promise<boolean> {
    const rows = await this.step(PURGE_SQL.claimTick, [tick, instance]);
    return rows.length === 1;
  }

  /** Written also when the run lost its lease: the claimed tick's row is this run's. */
  async finishTick(
    tick: Date,
    outcome: { sessionsDeleted: number; auditRowsDeleted: number; error?: string },
  ): Promise<void> {
    await this.step(
      PURGE_SQL.finishTick,
      [tick, outcome.sessionsDeleted, outcome.auditRowsDeleted, outcome.error ?? null],
      false,
    );
  }

  async purgeOldTicks(retentionMs: number): Promise<number> {
    const [row] = await this.step(PURGE_SQL.purgeOldTicks, [retentionMs]);
    return row.deleted;
  }

  /** The audit log's weekly partitions, kept on this connection in transactions of their own (none is open between steps). */
  auditPartitions(): AuditPartitions {
    return new AuditPartitions(this.client);
  }

  /**
   * Gives the lease up and the connection back to the pool. A lease that cannot be given up
   * (the database went away) lapses by itself after PURGE_LEASE_MS; a connection that broke,
   * or was left inside a transaction, is destroyed instead of pooled.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.holder !== undefined && !this.broken)
      await this.query(PURGE_SQL.releaseLease, [this.holder]).catch(() => undefined);
    this.holder = undefined;
    this.client.removeListener('error', this.onError); // the pool puts its own listener back
    this.client.release(this.broken ? true : undefined);
  }

  /**
   * `statement` in a transaction of its own, after beginStep; `leased`: only while this run
   * still holds the lease (PurgeLeaseLostError otherwise, and nothing is written).
   */
  private async step(statement: Statement, values: unknown[], leased = true) {
    await this.query(PURGE_SQL.purgeBegin, []);
    try {
      const [limits] = await this.query(PURGE_SQL.beginStep, [
        STATEMENT_TIMEOUT,
        LOCK_TIMEOUT,
        this.holder ?? null,
        PURGE_LEASE_MS,
      ]);
      if (leased && !limits.held) throw new PurgeLeaseLostError();
      const rows = await this.query(statement, values);
      await this.query(PURGE_SQL.purgeCommit, []);
      return rows;
    } catch (error) {
      await this.client.query('ROLLBACK').catch(() => {
        this.broken = true;
      });
      throw error;
    }
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
  /** This store's name in session_purge_lease (host, process, and a random part per store). */
  private readonly holder = `${hostname()}:${process.pid}:${randomUUID()}`;

  /** `notify`: announce purged batches to caches (`cache.notify`); on by default (the CLI cannot know the fleet). */
  constructor(
    private readonly pool: Pool,
    private readonly changes?: SessionChangeSink,
    private readonly notify = true,
  ) {}

  async connect(): Promise<PurgeConnection> {
    try {
      return new PurgeConnection(await this.pool.connect(), this.changes, this.notify, this.holder);
    } catch (error) {
      throw new StoreUnavailableError((error as Error).message, { cause: error });
    }
  }
}
