import type { PoolClient } from 'pg';
import { asStoreError } from '../store/pg-errors.js';
import type { Statement } from '../store/statement.js';
import { AUDIT_PARTITION_SQL as SQL } from './audit-partitions.sql.js';

/** Advisory lock key of partition maintenance ('npsa'), taken per transaction; the purge and migrations use others. */
export const AUDIT_PARTITION_LOCK_KEY = 0x6e70_7361;

/**
 * Weekly partitions kept ready after this week's: at least the next 7 days are always covered,
 * so a purge that fails or is off for a week still leaves every audit insert its partition.
 */
export const AUDIT_PARTITION_WEEKS_AHEAD = 1;

/** A DDL waits this long for the audit table's lock, then gives up until the next run. */
const LOCK_TIMEOUT = '1s';
const STATEMENT_TIMEOUT = '60s';

export interface PartitionsCreated {
  created: number;
  /** Rows moved out of the DEFAULT partition into the new partitions. */
  rowsMoved: number;
  /** Another maintainer held the lock: nothing more was tried this run. */
  busy?: true;
  /** Why the partition it was at failed (the ones before it stand); nothing more was tried. */
  error?: unknown;
}

export interface PartitionsDropped {
  dropped: number;
  /** Rows in the dropped partitions. */
  rowsDropped: number;
  busy?: true;
  error?: unknown;
}

interface MissingWeek {
  partition: string;
  lo: string;
  hi: string;
  lock_default: string;
  create: string;
  move: string;
  attach: string;
}

/**
 * Keeps session_audit_log's weekly partitions (UTC weeks from Monday), one short transaction per
 * partition on the purge's connection. Each transaction sets its limits locally and takes a
 * transaction-scoped lock, so nothing outlives it: a pooler in transaction mode may hand the
 * connection to anyone next.
 */
export class AuditPartitions {
  constructor(private readonly client: Pick<PoolClient, 'query'>) {}

  /**
   * A partition for this week and each of `weeksAhead` after it, and for each week that has rows
   * in the DEFAULT partition within the retention (those rows move into it). Idempotent. A failed
   * partition ends the work and comes back as `error`, with what was done before it.
   */
  async createAhead(
    weeksAhead: number,
    retentionMs: number | null,
    stop: () => boolean = () => false,
  ): Promise<PartitionsCreated> {
    const result: PartitionsCreated = { created: 0, rowsMoved: 0 };
    const listed = await this.transaction(
      async () => (await this.run(SQL.missingWeeks, [weeksAhead, retentionMs])) as unknown as MissingWeek[],
    ).catch((error: unknown) => ({ error }));
    if (listed === undefined) return { ...result, busy: true };
    if (!Array.isArray(listed)) return { ...result, ...listed };
    for (const week of listed) {
      if (stop()) break;
      const outcome = await this.transaction(async () => {
        const [{ taken }] = await this.run(SQL.overlaps, [week.lo, week.hi]);
        if (taken) return null; // another maintainer made it since the list was read
        // No row can reach DEFAULT's part of this week while it moves.
        await this.client.query(week.lock_default);
        await this.client.query(week.create);
        const moved = await this.client.query(week.move);
        await this.client.query(week.attach);
        return moved.rowCount ?? 0;
      }).catch((error: unknown) => ({ error }));
      if (typeof outcome === 'object' && outcome !== null) return { ...result, ...outcome };
      if (outcome === undefined) return { ...result, busy: true };
      if (outcome === null) continue;
      result.created++;
      result.rowsMoved += outcome;
    }
    return result;
  }

  /** Drops, oldest first, every partition whose whole range is older than the retention (a failure: as createAhead). */
  async dropExpired(retentionMs: number, stop: () => boolean = () => false): Promise<PartitionsDropped> {
    const result: PartitionsDropped = { dropped: 0, rowsDropped: 0 };
    for (;;) {
      if (stop()) return result;
      const outcome = await this.transaction(async () => {
        const [expired] = await this.run(SQL.oldestExpired, [retentionMs]);
        if (!expired) return null;
        // Counted before the drop takes the parent's lock, so inserts do not wait for the count.
        const [{ rows }] = (await this.client.query(expired.count as string)).rows;
        await this.client.query(expired.drop as string);
        return rows as number;
      }).catch((error: unknown) => ({ error }));
      if (typeof outcome === 'object' && outcome !== null) return { ...result, ...outcome };
      if (outcome === undefined) return { ...result, busy: true };
      if (outcome === null) return result;
      result.dropped++;
      result.rowsDropped += outcome;
    }
  }

  /** Rows of the DEFAULT partition past the retention, one batch (see AUDIT_PARTITION_SQL.purgeOldDefaultRows). */
  async purgeOldDefaultRows(retentionMs: number, batchSize: number): Promise<number> {
    try {
      const deleted = await this.transaction(async () => {
        const [row] = await this.run(SQL.purgeOldDefaultRows, [retentionMs, batchSize]);
        return row.deleted as number;
      }, false);
      return deleted!;
    } catch (error) {
      throw asStoreError(error); // a batch like the session ones: unavailable is a 503-kind failure
    }
  }

  /**
   * `work` in one transaction with its own limits and, when `exclusive`, under the maintenance
   * lock; undefined when another maintainer holds that.
   */
  private async transaction<T>(work: () => Promise<T>, exclusive = true): Promise<T | undefined> {
    await this.client.query('BEGIN');
    try {
      await this.run(SQL.setLocalLimits, [LOCK_TIMEOUT, STATEMENT_TIMEOUT]);
      const locked = !exclusive || (await this.run(SQL.tryLock, [AUDIT_PARTITION_LOCK_KEY]))[0].locked;
      const result = locked ? await work() : undefined;
      await this.client.query('COMMIT');
      return result;
    } catch (error) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  private async run(statement: Statement, values: unknown[]) {
    return (await this.client.query(statement.text, values)).rows;
  }
}
