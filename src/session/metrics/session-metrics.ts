import type { SessionFailureReason } from '../active-session.js';
import type { PurgeResult } from '../purge/purge-result.js';
import type { SessionMetricsRegistry } from './metrics.options.js';

/** The `outcome` label of `validations_total`: the guard's verdict, with the failure reasons folded into a few classes. */
export type ValidationMetricOutcome =
  'ok' | 'missing' | 'invalid' | 'expired' | 'revoked' | 'rate_limited' | 'db_error' | 'error';

export const VALIDATION_OUTCOMES: readonly ValidationMetricOutcome[] = [
  'ok',
  'missing',
  'invalid',
  'expired',
  'revoked',
  'rate_limited',
  'db_error',
  'error',
];

/**
 * Both timeouts are "expired" to an operator. `reauth_required` never comes out of validation
 * (@RequireFreshSession raises it for a session that validated fine), so it counts as ok. A pending
 * session outside its verification route is refused like a token that is not valid there: 'invalid'.
 */
export const OUTCOME_OF_REASON: Readonly<Record<SessionFailureReason, ValidationMetricOutcome>> = {
  missing: 'missing',
  invalid: 'invalid',
  idle_timeout: 'expired',
  absolute_timeout: 'expired',
  revoked: 'revoked',
  too_many_invalid_tokens: 'rate_limited',
  reauth_required: 'ok',
  second_factor_required: 'invalid',
};

export type RotationReason = 'interval' | 'manual' | 'reauthenticated';

/**
 * What the module records about itself. Injectable by this class (always provided by
 * SessionModule): with `metrics.enabled` false (the default) it is `NoopSessionMetrics`,
 * whose methods do nothing and which never loads prom-client; with it true it is the
 * prom-client implementation (see prometheus-session-metrics.ts).
 */
export abstract class SessionMetrics {
  /** False for the no-op: callers that would measure something (a clock read) skip it. */
  abstract readonly enabled: boolean;
  /** The registry the metrics are in; undefined when disabled. */
  abstract readonly registry: SessionMetricsRegistry | undefined;
  abstract validation(outcome: ValidationMetricOutcome): void;
  /** One store statement (its name in SESSION_SQL) finished, either way; `startedAt` is its `performance.now()`. */
  abstract statement(name: string, startedAt: number): void;
  /** For the session cache: a lookup answered from memory. */
  abstract cacheHit(): void;
  /** For the session cache: a lookup that had to read the database. */
  abstract cacheMiss(): void;
  /** A touch that wrote (`last_seen_at` was stale). */
  abstract touch(): void;
  abstract rotation(reason: RotationReason): void;
  /** A purge run ended: with its result, or with the error that failed it. */
  abstract purgeRun(outcome: { result: PurgeResult } | { error: unknown }): void;
}

/** Metrics off: every method is empty, so the hot path pays a call that V8 inlines away. */
export class NoopSessionMetrics extends SessionMetrics {
  readonly enabled = false;
  readonly registry = undefined;
  validation(): void {}
  statement(): void {}
  cacheHit(): void {}
  cacheMiss(): void {}
  touch(): void {}
  rotation(): void {}
  purgeRun(): void {}
}
