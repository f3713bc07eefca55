import type { Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SessionEvents } from '../audit/session-events.js';
import type { ResolvedPurgeOptions } from '../session.options.js';
import { asStoreError, redactSecrets, StoreUnavailableError } from '../store/pg-errors.js';
import { AUDIT_PARTITION_WEEKS_AHEAD, type AuditPartitions } from './audit-partitions.js';
import type { PurgeResult } from './purge-result.js';
import { PURGE_RUNS_RETENTION_MS, type PurgeConnection } from './purge.store.js';

/**
 * What one purge run does once SessionPurgeService holds the lease (and claimed its tick):
 * partitions, expired sessions, old audit rows, personal data, in paced batches that stop
 * when `shutdown` aborts.
 */
export class PurgeWork {
  constructor(
    private readonly options: ResolvedPurgeOptions,
    /** Audit rows older than this lose their personal data; null: never. */
    private readonly personalDataRetentionMs: number | null,
    private readonly shutdown: AbortSignal,
    /** The service's logger: warnings name SessionPurgeService. */
    private readonly logger: Logger,
    private readonly events?: SessionEvents,
  ) {}

  /**
   * The run's work, counted into `result`; session_purge_runs keeps a week of ticks. The audit
   * log's partitions are made first, so today's rows never wait on a slow session purge to get one.
   */
  async purge(connection: PurgeConnection, result: PurgeResult): Promise<void> {
    const { batchSize, auditRetentionMs } = this.options;
    const partitions = connection.auditPartitions();
    const stopped = () => this.shutdown.aborted;
    const made = await partitions.createAhead(AUDIT_PARTITION_WEEKS_AHEAD, auditRetentionMs, stopped);
    result.auditPartitionsCreated += made.created;
    if (made.rowsMoved > 0) result.auditRowsMoved = (result.auditRowsMoved ?? 0) + made.rowsMoved;
    this.partitionFailure('create', made.error);
    const sessions = (pass: 'idle' | 'absolute') => async () => {
      const { deleted, auditRows } = await connection.purgeExpiredSessions(
        pass,
        batchSize,
        this.events?.observed === true,
      );
      for (const record of auditRows) this.events!.publish(record);
      return deleted;
    };
    const done =
      (await this.drain(result, sessions('idle'), (n) => (result.sessionsDeleted += n))) &&
      (await this.drain(result, sessions('absolute'), (n) => (result.sessionsDeleted += n))) &&
      (auditRetentionMs === null || (await this.expireAudit(partitions, auditRetentionMs, result))) &&
      (await this.clearPersonalData(connection, result));
    if (!done) result.interrupted = true;
    else await connection.purgeOldTicks(PURGE_RUNS_RETENTION_MS);
  }

  /** Audit rows past the retention: whole partitions first, then what waits in DEFAULT. False when shutdown stopped it. */
  private async expireAudit(partitions: AuditPartitions, retentionMs: number, result: PurgeResult): Promise<boolean> {
    const gone = await partitions.dropExpired(retentionMs, () => this.shutdown.aborted);
    result.auditPartitionsDropped += gone.dropped;
    result.auditRowsDeleted += gone.rowsDropped;
    this.partitionFailure('drop', gone.error);
    return this.drain(
      result,
      () => partitions.purgeOldDefaultRows(retentionMs, this.options.batchSize),
      (n) => (result.auditRowsDeleted += n),
    );
  }

  /** Last, so no row is cleared that the audit retention was about to delete. False when shutdown stopped it. */
  private async clearPersonalData(connection: PurgeConnection, result: PurgeResult): Promise<boolean> {
    const retentionMs = this.personalDataRetentionMs;
    if (retentionMs === null) return true;
    return this.drain(
      result,
      () => connection.clearPersonalData(retentionMs, this.options.batchSize),
      (n) => (result.auditRowsCleared += n),
    );
  }

  /**
   * Partition DDL that fails (the table stayed locked past the lock timeout, the role may not own
   * it) is a warning: sessions still get purged, audit rows still have DEFAULT, the next run
   * retries. A lost connection still ends the run.
   */
  private partitionFailure(step: 'create' | 'drop', error: unknown): void {
    if (error === undefined) return;
    const code = String((error as { code?: unknown })?.code ?? '');
    if (!/^[0-9A-Z]{5}$/.test(code) || /^(08|57P)/.test(code)) throw asStoreError(error);
    const hint =
      code === '42501'
        ? ' (the role that runs the purge must own session_audit_log to create and drop its partitions)'
        : '';
    this.logger.warn(`audit partitions (${step}) failed, the next run tries again: ${describe(error)}${hint}`);
  }

  /**
   * Runs batches until one comes back short, pausing after each in proportion to how long it
   * took (the duty cycle), so the pace adapts to the server. False when shutdown stopped it.
   */
  private async drain(
    result: PurgeResult,
    batch: () => Promise<number>,
    count: (deleted: number) => void,
  ): Promise<boolean> {
    const { batchSize, dutyCycle } = this.options;
    for (;;) {
      if (this.shutdown.aborted) return false;
      const started = performance.now();
      const deleted = await batch();
      count(deleted);
      if (deleted > 0) result.batches++;
      if (deleted < batchSize) return true;
      const pauseMs = ((performance.now() - started) * (1 - dutyCycle)) / dutyCycle;
      if (pauseMs >= 1) await sleep(pauseMs, undefined, { signal: this.shutdown }).catch(() => undefined);
    }
  }
}

/** For the log line and session_purge_runs.error: with anything token-shaped redacted, as the store's warnings are. */
export function describe(error: unknown): string {
  return redactSecrets(
    error instanceof StoreUnavailableError
      ? `session store unavailable: ${error.detail}`
      : String((error as Error)?.message ?? error),
  );
}
