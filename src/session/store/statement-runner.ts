import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { toAuditRecord } from '../audit/audit-record.js';
import type { AuditEventSink } from '../audit/session-events.js';
import type { SessionDataCipher } from '../encryption/session-data-cipher.js';
import type { SessionMetrics } from '../metrics/session-metrics.js';
import { DEFAULTS } from '../session.options.js';
import { queryWithin } from './bounded-wait.js';
import { asStoreError, StoreErrorLog, StoreUnavailableError } from './pg-errors.js';
import { SESSION_SQL as SQL } from './session.sql.js';
import type { Statement } from './statement.js';
import { inTransaction, type RunInTransaction } from './transaction.js';

/**
 * Told which sessions a committed statement changed (the ids it also sent by NOTIFY), so
 * this instance's cache drops them at once rather than when its own notice comes back.
 */
export interface SessionChangeSink {
  evictSession(id: string): void;
  evictAll(): void;
}

export interface SessionStoreOptions {
  /** Bound on each statement, the wait for a connection included. Default 5 s. */
  queryTimeoutMs?: number;
  /** Receives each audit row after its statement committed (SessionEvents). */
  events?: AuditEventSink;
  /** The local cache, if any. */
  changes?: SessionChangeSink;
  /** Only when metrics are enabled: without it, no statement reads the clock. */
  metrics?: SessionMetrics;
  /** Announce changes on INVALIDATION_CHANNEL (`cache.notify`). Default true. */
  notify?: boolean;
  /** Name the hot-path statements (server-side prepared); false behind a transaction pooler. Default: the option's. */
  preparedStatements?: boolean;
  /** Encrypts each value of `data` at rest (the `encryption` option); absent: data is stored as given. */
  cipher?: SessionDataCipher;
}

/**
 * Runs the session store's statements: each by name, bounded in time, timed for the metrics,
 * its failure logged and classified (pg-errors.ts). A statement that changes sessions returns
 * its audit rows and the ids it announced; once it has committed, committed() hands them to
 * the event sink and the local cache.
 */
export class StatementRunner {
  private readonly errorLog = new StoreErrorLog();
  private readonly queryTimeoutMs: number;
  private readonly events?: AuditEventSink;
  private readonly changes?: SessionChangeSink;
  /** Only when metrics are enabled. */
  readonly metrics?: SessionMetrics;
  /** The last parameter of every statement that changes sessions (`cache.notify`). */
  readonly notify: boolean;
  private readonly preparedStatements: boolean;

  constructor(
    private readonly pool: Pool,
    options: SessionStoreOptions = {},
  ) {
    this.queryTimeoutMs = options.queryTimeoutMs ?? 5_000;
    this.events = options.events;
    this.changes = options.changes;
    this.metrics = options.metrics;
    this.notify = options.notify ?? true;
    this.preparedStatements = options.preparedStatements ?? DEFAULTS.preparedStatements;
  }

  /**
   * After a statement committed: hands the audit rows it wrote to the event sink, then evicts
   * the sessions it changed (the ids it announced) from the local cache.
   */
  committed(row: { audit_rows?: unknown; notified_ids?: unknown } | undefined): void {
    if (row === undefined) return;
    if (this.events && Array.isArray(row.audit_rows))
      for (const record of row.audit_rows) this.events.publish(toAuditRecord(record));
    if (this.changes && Array.isArray(row.notified_ids))
      for (const id of row.notified_ids) this.changes.evictSession(String(id));
  }

  /** One statement, bounded as a whole (queryWithin), timed for the metrics, its failure logged and classified. */
  run(statement: Statement, values?: unknown[], client: Pool | PoolClient = this.pool): Promise<QueryResultRow[]> {
    const started = this.metrics && performance.now();
    return new Promise((resolve, reject) =>
      queryWithin(
        client,
        statement,
        values,
        this.queryTimeoutMs,
        () => new StoreUnavailableError(`no answer within ${this.queryTimeoutMs} ms`),
        (error, rows) => {
          if (started !== undefined) this.metrics!.statement(statement.name, started);
          if (rows) return resolve(rows);
          this.errorLog.report(statement.name, error);
          reject(asStoreError(error));
        },
        this.preparedStatements,
      ),
    );
  }

  /** Runs `work` in one transaction on one connection (transaction.ts); any error rolls it back. */
  async transaction<T>(work: (run: RunInTransaction) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch((error: unknown) => {
      this.errorLog.report(SQL.begin.name, error);
      throw asStoreError(error);
    });
    return inTransaction(client, (statement, values) => this.run(statement, values, client), work);
  }
}
