import * as is from '../option-schema.js';
import type { ResolvedSessionOptions } from '../session.options.js';

export type ResolvedMetricsOptions = ResolvedSessionOptions['metrics'];

/**
 * What the module needs of a prom-client `Registry`. Structural, so this package's types
 * never name prom-client (an optional peer dependency a host app may not have installed).
 */
export interface SessionMetricsRegistry {
  registerMetric(metric: never): void;
  removeSingleMetric(name: string): void;
  metrics(): Promise<string>;
  readonly contentType: string;
}

const isRegistry = (value: unknown) =>
  typeof value === 'object' &&
  value !== null &&
  ['registerMetric', 'removeSingleMetric', 'metrics'].every(
    (m) => typeof (value as Record<string, unknown>)[m] === 'function',
  );

/** Prometheus metrics through prom-client (`metrics` in SessionModule options). Off by default. */
export class SessionMetricsOptions {
  /** Record metrics. Needs the `prom-client` package. */
  @is.Bool() enabled?: boolean;
  /** Prefix of every metric name: Prometheus name characters, so every name built from it is valid. */
  @is.Text(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, "must be a Prometheus name prefix (letters, digits, '_', ':'; no digit first)")
  prefix?: string;
  /** Where the metrics are registered (the very object, never copied). Default: prom-client's global `register`. */
  @is.Check(isRegistry, 'must be a prom-client Registry') registry?: SessionMetricsRegistry;
}
