import type { OnModuleDestroy } from '@nestjs/common';
import type { Pool, QueryConfig } from 'pg';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PurgeResult } from '../purge/session-purge.service.js';
import { SessionOptionsError } from '../session.options.js';
import { within } from '../store/bounded-wait.js';
import { ACTIVE_SESSIONS_SAMPLE_MS, METRICS_SQL } from './metrics.sql.js';
import type { ResolvedMetricsOptions, SessionMetricsRegistry } from './metrics.options.js';
import {
  NoopSessionMetrics,
  SessionMetrics,
  VALIDATION_OUTCOMES,
  type RotationReason,
  type ValidationMetricOutcome,
} from './session-metrics.js';

type PromClient = typeof import('prom-client');

const ACTIVE_SESSIONS_TIMEOUT_MS = 5_000;

/** Store statements are sub-millisecond on a warm index; the top buckets catch pool waits and timeouts (5 s). */
const STATEMENT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const PURGE_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900];

/**
 * Loads prom-client only when metrics are enabled (it is an optional peer dependency), and
 * says how to fix it when it is missing.
 */
export async function loadPromClient(
  importer: () => Promise<unknown> = () => import('prom-client'),
): Promise<PromClient> {
  let loaded: unknown;
  try {
    loaded = await importer();
  } catch (error) {
    if (
      (error as { code?: string })?.code === 'ERR_MODULE_NOT_FOUND' ||
      (error as { code?: string })?.code === 'MODULE_NOT_FOUND'
    ) {
      throw new SessionOptionsError(
        "SessionModule option metrics.enabled is true, but the optional peer dependency 'prom-client' " +
          'is not installed: run `npm install prom-client`, or turn metrics off',
        { cause: error },
      );
    }
    throw error;
  }
  // Node exposes this CommonJS package's exports as named exports; other loaders only as `default`.
  const module = loaded as PromClient & { default?: PromClient };
  return typeof module.Registry === 'function' ? module : module.default!;
}

/** The SessionMetrics provider: the no-op unless enabled, so prom-client is never even imported when off. */
export async function createSessionMetrics(
  options: ResolvedMetricsOptions,
  pool: Pool,
  importer?: () => Promise<unknown>,
): Promise<SessionMetrics> {
  if (!options.enabled) return new NoopSessionMetrics();
  return new PrometheusSessionMetrics(await loadPromClient(importer), options, pool);
}

export class PrometheusSessionMetrics extends SessionMetrics implements OnModuleDestroy {
  readonly enabled = true;
  readonly registry: SessionMetricsRegistry;
  private readonly names: string[] = [];
  private readonly validations: Record<ValidationMetricOutcome, { inc(): void }>;
  private readonly statements: Histogram<'statement'>;
  /** Bound children by statement name: label hashing once per name, not once per query. */
  private readonly statementChildren = new Map<string, { observe(seconds: number): void }>();
  private readonly cacheHits: Counter;
  private readonly cacheMisses: Counter;
  private readonly touches: Counter;
  private readonly rotations: Counter<'reason'>;
  private readonly purgeRows: Counter<'kind'>;
  private readonly purgeRuns: Counter<'result'>;
  private readonly purgeCleared: Counter;
  private readonly purgeDuration: Histogram;
  private activeSample: { at: number; value: number } | undefined;
  private sampling: Promise<void> | undefined;
  private readonly prefix: string;

  constructor(
    prom: PromClient,
    options: ResolvedMetricsOptions,
    private readonly pool: Pool,
  ) {
    super();
    const registry = (options.registry ?? prom.register) as Registry;
    this.registry = registry;
    const p = (this.prefix = options.prefix);
    const registers = [registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
      this.register(name, () => new prom.Counter<L>({ name: p + name, help, labelNames, registers }));

    const validations = counter('validations_total', 'Session validations by the guard, by outcome', ['outcome']);
    // Bound children, created up front: no label hashing per request, and every outcome is exported from 0.
    this.validations = Object.fromEntries(VALIDATION_OUTCOMES.map((o) => [o, validations.labels(o)])) as never;
    for (const o of VALIDATION_OUTCOMES) validations.labels(o).inc(0);
    this.statements = this.register(
      'store_query_duration_seconds',
      () =>
        new prom.Histogram<'statement'>({
          name: `${p}store_query_duration_seconds`,
          help: 'Session store statements, by statement name (SESSION_SQL in session.sql.ts)',
          labelNames: ['statement'],
          buckets: STATEMENT_BUCKETS,
          registers,
        }),
    );
    this.cacheHits = counter('cache_hits_total', 'Session lookups answered by the cache');
    this.cacheMisses = counter('cache_misses_total', 'Session lookups the cache sent to the database');
    this.touches = counter(
      'touches_total',
      'Touches that wrote last_seen_at (at most one per session and touch interval)',
    );
    this.rotations = counter('rotations_total', 'Token rotations, by reason', ['reason']);
    for (const reason of ['interval', 'manual', 'reauthenticated']) this.rotations.labels(reason).inc(0);
    this.purgeRows = counter('purge_rows_total', 'Rows deleted by the purge (kind: sessions or audit)', ['kind']);
    for (const kind of ['sessions', 'audit']) this.purgeRows.labels(kind).inc(0);
    this.purgeCleared = counter(
      'purge_personal_data_cleared_total',
      'Audit rows whose IP address and user agent the purge cleared (privacy.personalDataRetention)',
    );
    this.purgeRuns = counter('purge_runs_total', 'Purge runs on this instance, by result (ok, skipped, failed)', [
      'result',
    ]);
    for (const result of ['ok', 'skipped', 'failed']) this.purgeRuns.labels(result).inc(0);
    this.purgeDuration = this.register(
      'purge_duration_seconds',
      () =>
        new prom.Histogram({
          name: `${p}purge_duration_seconds`,
          help: 'Duration of purge runs that finished (not skipped, not failed)',
          buckets: PURGE_BUCKETS,
          registers,
        }),
    );
    const sampleActive = () => this.sampleActiveSessions();
    this.register(
      'active_sessions',
      () =>
        new prom.Gauge({
          name: `${p}active_sessions`,
          help: `Live user sessions in the store (guests not counted), counted at most once per ${ACTIVE_SESSIONS_SAMPLE_MS / 1000} s`,
          registers,
          async collect(this: Gauge) {
            const value = await sampleActive();
            if (value !== undefined) this.set(value);
          },
        }),
    );
  }

  validation(outcome: ValidationMetricOutcome): void {
    this.validations[outcome].inc();
  }

  statement(name: string, startedAt: number): void {
    const seconds = (performance.now() - startedAt) / 1000;
    let child = this.statementChildren.get(name);
    if (!child) {
      // The label is the statement's name, so a slow bucket points at one statement of session.sql.ts.
      child = this.statements.labels(name);
      this.statementChildren.set(name, child);
    }
    child.observe(seconds);
  }

  cacheHit(): void {
    this.cacheHits.inc();
  }

  cacheMiss(): void {
    this.cacheMisses.inc();
  }

  touch(): void {
    this.touches.inc();
  }

  rotation(reason: RotationReason): void {
    this.rotations.labels(reason).inc();
  }

  purgeRun(outcome: { result: PurgeResult } | { error: unknown }): void {
    if ('error' in outcome) {
      this.purgeRuns.labels('failed').inc();
      return;
    }
    const { result } = outcome;
    if (result.skipped) {
      this.purgeRuns.labels('skipped').inc();
      return;
    }
    this.purgeRuns.labels('ok').inc();
    this.purgeRows.labels('sessions').inc(result.sessionsDeleted);
    this.purgeRows.labels('audit').inc(result.auditRowsDeleted);
    this.purgeCleared.inc(result.auditRowsCleared);
    this.purgeDuration.observe(result.durationMs / 1000);
  }

  /** A shared registry outlives the app (tests, hot reload): leave it as we found it. */
  onModuleDestroy(): void {
    for (const name of this.names) this.registry.removeSingleMetric(name);
  }

  /**
   * The gauge's value, recounted when the last count is older than the sample period. A
   * failed count keeps the previous value (the scrape still succeeds); concurrent scrapes
   * share one query.
   */
  private async sampleActiveSessions(): Promise<number | undefined> {
    if (!this.activeSample || performance.now() - this.activeSample.at >= ACTIVE_SESSIONS_SAMPLE_MS) {
      // Started inside a promise chain, so even a synchronous throw ends as "no new sample", never as a failed scrape.
      this.sampling ??= Promise.resolve()
        .then(() =>
          this.pool.query({
            text: METRICS_SQL.countActiveSessions.text,
            query_timeout: ACTIVE_SESSIONS_TIMEOUT_MS,
          } as QueryConfig),
        )
        .then((r) => {
          this.activeSample = { at: performance.now(), value: r.rows[0].n };
        })
        .catch(() => undefined)
        .finally(() => (this.sampling = undefined));
      // With the pool exhausted the count may wait long: the scrape stops waiting (and reports the last value) in time.
      await within(this.sampling, ACTIVE_SESSIONS_TIMEOUT_MS, () => undefined);
    }
    return this.activeSample?.value;
  }

  private register<M>(name: string, create: () => M): M {
    try {
      const metric = create();
      this.names.push(this.prefixed(name));
      return metric;
    } catch (error) {
      throw new SessionOptionsError(
        `metrics: cannot register ${this.prefixed(name)} (${(error as Error).message}). ` +
          'Two SessionModules (or two apps) sharing one registry need different metrics.prefix values or metrics.registry',
        { cause: error },
      );
    }
  }

  private prefixed(name: string): string {
    return this.prefix + name;
  }
}
