import { Logger } from '@nestjs/common';
import type { Pool } from 'pg';
import type { PurgeRunStatus, SessionPurgeService } from '../purge/session-purge.service.js';
import { boundedQuery } from '../store/bounded-wait.js';
import { describeStoreError, storeErrorCategory } from '../store/pg-errors.js';
import type { SessionCacheStatus } from './cache-status.js';
import { HEALTH_SQL } from './health.sql.js';

/** Short: a health probe must answer before the orchestrator's own timeout. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 1_000;

export type SessionHealthStatus = 'up' | 'degraded' | 'down';

export interface HealthCheckOptions {
  /** How long the store may take to answer `SELECT 1`. Default 1 s. */
  timeoutMs?: number;
  /**
   * Put the database's own error text in the report. Default false: health endpoints are
   * usually public, and that text names hosts, ports, users and databases; the report then
   * carries a category (`timeout`, `connection_refused`, ...) and the full text goes to the log.
   */
  errorDetail?: boolean;
}

export interface SessionHealthReport {
  /**
   * 'down' only when the store cannot be reached (sessions cannot be checked); 'degraded'
   * when requests are still served but something needs a look: the last purge run failed,
   * or the cache's invalidation listener is disconnected (lookups fall back to the database).
   */
  status: SessionHealthStatus;
  store: { status: 'up' | 'down'; responseTimeMs: number; error?: string };
  purge: SessionPurgeHealth;
  cache: { status: 'disabled' | 'connected' | 'disconnected' };
}

export interface SessionPurgeHealth {
  /** 'never_run' until this instance's first run ends (or when it has no scheduled purge and none was run by hand). */
  status: 'ok' | 'skipped' | 'failed' | 'never_run';
  /** Whether this instance runs the purge on a schedule. */
  scheduled: boolean;
  lastRunAt?: string;
  /** Seconds since the last run ended. */
  ageSeconds?: number;
  sessionsDeleted?: number;
  auditRowsDeleted?: number;
  durationMs?: number;
  /**
   * 'locked': another instance held the purge lock; 'claimed': another instance already ran
   * this tick. Both are how a cluster shares the job.
   */
  skipped?: string;
  error?: string;
}

/**
 * The session module's health, without any health-check framework: the Terminus indicator
 * (`nest-pg-session/health`) and any other probe build on `check()`.
 */
export class SessionHealth {
  private readonly logger = new Logger('SessionHealth');

  constructor(
    private readonly pool: Pool,
    private readonly purge: SessionPurgeService,
    private readonly cache?: SessionCacheStatus,
    private readonly purgeScheduled = true,
  ) {}

  async check(options: HealthCheckOptions = {}): Promise<SessionHealthReport> {
    const store = await this.pingStore(options.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS, options.errorDetail === true);
    const purge = purgeHealth(this.purge.lastRun, this.purgeScheduled);
    const cache = {
      status: !this.cache?.enabled ? 'disabled' : this.cache.connected ? 'connected' : 'disconnected',
    } as const;
    const status: SessionHealthStatus =
      store.status === 'down'
        ? 'down'
        : purge.status === 'failed' || cache.status === 'disconnected'
          ? 'degraded'
          : 'up';
    return { status, store, purge, cache };
  }

  /** `SELECT 1` through the pool the sessions use, so a full or broken pool shows (the wait for a connection is bounded too). */
  private async pingStore(timeoutMs: number, errorDetail: boolean): Promise<SessionHealthReport['store']> {
    const started = performance.now();
    try {
      await boundedQuery(
        this.pool,
        HEALTH_SQL.ping,
        undefined,
        timeoutMs,
        () => new Error(`no answer within ${timeoutMs} ms`),
      );
      return { status: 'up', responseTimeMs: Math.round(performance.now() - started) };
    } catch (error) {
      const detail = describeStoreError(error);
      if (!errorDetail) this.logger.warn(`session store down: ${detail}`);
      return {
        status: 'down',
        responseTimeMs: Math.round(performance.now() - started),
        error: errorDetail ? detail : storeErrorCategory(error),
      };
    }
  }
}

function purgeHealth(last: PurgeRunStatus | undefined, scheduled: boolean): SessionPurgeHealth {
  if (!last) return { status: 'never_run', scheduled };
  const common = {
    scheduled,
    lastRunAt: last.finishedAt.toISOString(),
    ageSeconds: Math.round((Date.now() - last.finishedAt.getTime()) / 1000),
  };
  if (!last.result) return { status: 'failed', ...common, error: last.error };
  const { sessionsDeleted, auditRowsDeleted, durationMs, skipped } = last.result;
  return {
    status: skipped ? 'skipped' : 'ok',
    ...common,
    sessionsDeleted,
    auditRowsDeleted,
    durationMs,
    ...(skipped ? { skipped } : {}),
  };
}
