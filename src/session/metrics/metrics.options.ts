import { IsBoolean, IsOptional, IsString, Matches, registerDecorator } from 'class-validator';

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

/** Prometheus metrics through prom-client (`metrics` in SessionModule options). Off by default. */
export interface SessionMetricsOptions {
  /** Record metrics. Needs the `prom-client` package. Default false. */
  enabled?: boolean;
  /** Prefix of every metric name. Default 'nest_pg_session_'. */
  prefix?: string;
  /** Where the metrics are registered. Default: prom-client's global `register`. */
  registry?: SessionMetricsRegistry;
}

export interface ResolvedMetricsOptions {
  enabled: boolean;
  prefix: string;
  registry?: SessionMetricsRegistry;
}

export const DEFAULT_METRICS_PREFIX = 'nest_pg_session_';

/** Stands in for a valid registry while the options are validated (see metricsOptionsForValidation). */
const A_REGISTRY = Symbol('a prom-client Registry');

function isRegistryLike(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    ['registerMetric', 'removeSingleMetric', 'metrics'].every(
      (m) => typeof (value as Record<string, unknown>)[m] === 'function',
    )
  );
}

/**
 * The `metrics` options as class-validator gets them. A registry is a live object graph:
 * class-transformer would walk it and even re-construct its metrics (which throws), so it is
 * checked here and replaced by a marker; resolveMetricsOptions keeps the original object.
 */
export function metricsOptionsForValidation(metrics: unknown): unknown {
  if (typeof metrics !== 'object' || metrics === null || !('registry' in metrics)) return metrics;
  const { registry } = metrics as { registry: unknown };
  const stand =
    registry === undefined
      ? undefined
      : isRegistryLike(registry)
        ? A_REGISTRY
        : typeof registry === 'object'
          ? 'an object that is not a Registry'
          : registry;
  return { ...metrics, registry: stand };
}

function IsMetricsRegistry() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isMetricsRegistry',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown) => value === undefined || value === A_REGISTRY,
        defaultMessage: () => 'must be a prom-client Registry',
      },
    });
}

export class MetricsOptionsSchema implements SessionMetricsOptions {
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  // Prometheus metric-name characters, so every name built from it is valid.
  @IsOptional()
  @IsString()
  @Matches(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, { message: "must be a Prometheus name prefix like 'nest_pg_session_'" })
  prefix?: string;

  @IsMetricsRegistry()
  registry?: SessionMetricsRegistry;
}

export function resolveMetricsOptions(metrics: SessionMetricsOptions | undefined): ResolvedMetricsOptions {
  return {
    enabled: metrics?.enabled === true,
    prefix: metrics?.prefix ?? DEFAULT_METRICS_PREFIX,
    ...(metrics?.registry ? { registry: metrics.registry } : {}),
  };
}
