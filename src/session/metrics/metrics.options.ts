import { Transform } from 'class-transformer';
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

function IsMetricsRegistry() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isMetricsRegistry',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown) =>
          value === undefined ||
          (typeof value === 'object' && value !== null &&
            ['registerMetric', 'removeSingleMetric', 'metrics'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function')),
        defaultMessage: () => 'must be a prom-client Registry',
      },
    });
}

export class MetricsOptionsSchema implements SessionMetricsOptions {
  @IsOptional() @IsBoolean()
  enabled?: boolean;

  // Prometheus metric-name characters, so every name built from it is valid.
  @IsOptional() @IsString() @Matches(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, { message: "must be a Prometheus name prefix like 'nest_pg_session_'" })
  prefix?: string;

  // class-transformer would copy a Registry into a plain object without its methods: keep the original.
  @Transform(({ obj }) => (obj as SessionMetricsOptions).registry, { toClassOnly: true })
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
