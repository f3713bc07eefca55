import type { SessionModuleOptions, SessionPurgeOptions } from '../session/index.js';

/** Everything the demo reads from the environment. These names are a stable contract for black-box tests. */
export interface DemoConfig {
  databaseUrl: string;
  port: number;
  adapter: 'express' | 'fastify';
  session: SessionModuleOptions;
  /** Login attempts per minute per client address (@nestjs/throttler). */
  loginRateLimit: number;
}

export class DemoConfigError extends Error {}

export function loadDemoConfig(env: NodeJS.ProcessEnv, databaseUrl: string): DemoConfig {
  const adapter = env.HTTP_ADAPTER ?? 'express';
  if (adapter !== 'express' && adapter !== 'fastify') throw new DemoConfigError(`HTTP_ADAPTER must be 'express' or 'fastify', got '${adapter}'`);
  const transport = env.SESSION_TRANSPORT ?? 'cookie';
  if (transport !== 'cookie' && transport !== 'bearer') throw new DemoConfigError(`SESSION_TRANSPORT must be 'cookie' or 'bearer', got '${transport}'`);
  const session: SessionModuleOptions = { transport };
  // Durations go to the module as given: its option validation names any bad one.
  const durations = {
    idleTimeout: env.SESSION_IDLE_TIMEOUT,
    absoluteTimeout: env.SESSION_ABSOLUTE_TIMEOUT,
    touchInterval: env.SESSION_TOUCH_INTERVAL,
    rotationInterval: env.SESSION_ROTATION_INTERVAL,
    rotationGrace: env.SESSION_ROTATION_GRACE,
  };
  for (const [key, value] of Object.entries(durations)) {
    if (value !== undefined && value !== '') (session as Record<string, unknown>)[key] = value;
  }
  session.purge = purgeOptions(env);
  return {
    databaseUrl,
    port: integer(env.PORT, 3000, 'PORT'),
    adapter,
    session,
    loginRateLimit: integer(env.LOGIN_RATE_LIMIT, 30, 'LOGIN_RATE_LIMIT'),
  };
}

function integer(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value)) throw new DemoConfigError(`${name} must be a non-negative integer, got '${value}'`);
  return Number(value);
}

/**
 * PURGE_CRON: a cron expression or 'off'; AUDIT_RETENTION: a duration or 'forever';
 * PURGE_BATCH_SIZE: rows per batch; PURGE_DUTY_CYCLE: 0.001..1. The module validates the
 * values. Also read by `npm run purge`.
 */
export function purgeOptions(env: NodeJS.ProcessEnv): SessionPurgeOptions {
  const purge: SessionPurgeOptions = {};
  if (env.PURGE_BATCH_SIZE) purge.batchSize = integer(env.PURGE_BATCH_SIZE, 0, 'PURGE_BATCH_SIZE');
  if (env.PURGE_DUTY_CYCLE) purge.dutyCycle = Number(env.PURGE_DUTY_CYCLE);
  const cron = env.PURGE_CRON?.trim();
  if (cron === 'off') purge.enabled = false;
  else if (cron) purge.cron = cron;
  const retention = env.AUDIT_RETENTION?.trim();
  if (retention === 'forever') purge.auditRetention = false;
  else if (retention) purge.auditRetention = retention;
  return purge;
}
