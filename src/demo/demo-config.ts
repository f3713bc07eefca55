import type {
  SessionCacheOptions,
  SessionGuestOptions,
  SessionLimitPolicy,
  SessionModuleOptions,
  SessionPurgeOptions,
} from '../session/index.js';

/** Everything the demo reads from the environment. These names are a stable contract for black-box tests. */
export interface DemoConfig {
  databaseUrl: string;
  port: number;
  adapter: 'express' | 'fastify';
  session: SessionModuleOptions;
  /**
   * Password attempts per minute per client address (LOGIN_RATE_LIMIT, default 30; 0 turns both
   * limits off): one budget shared by every route that checks a password (@nestjs/throttler).
   */
  loginRateLimit: number;
  /**
   * Failed password attempts per account, from any address (ACCOUNT_RATE_LIMIT, default 10,
   * 0 = off), within ACCOUNT_RATE_WINDOW (default 15m). Unknown usernames are counted alike.
   */
  accountRateLimit: number;
  accountRateWindowMs: number;
  /** REQUEST_TIMEOUT (default 30s): the most a request may take to arrive, headers and body; then 408 and the connection closes. */
  requestTimeoutMs: number;
  /** Express `trust proxy` / Fastify `trustProxy` (TRUST_PROXY: 'true' or addresses such as 'loopback'); off by default. */
  trustProxy?: boolean | string;
}

export class DemoConfigError extends Error {}

export function loadDemoConfig(env: NodeJS.ProcessEnv, databaseUrl: string): DemoConfig {
  const adapter = env.HTTP_ADAPTER ?? 'express';
  if (adapter !== 'express' && adapter !== 'fastify')
    throw new DemoConfigError(`HTTP_ADAPTER must be 'express' or 'fastify', got '${adapter}'`);
  const transport = env.SESSION_TRANSPORT ?? 'cookie';
  if (transport !== 'cookie' && transport !== 'bearer')
    throw new DemoConfigError(`SESSION_TRANSPORT must be 'cookie' or 'bearer', got '${transport}'`);
  // Sockets at /ws close when their session ends (session.gateway.ts).
  const session: SessionModuleOptions = { transport, sockets: { enabled: true } };
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
  const port = integer(env.PORT, 3000, 'PORT');
  Object.assign(session, securityOptions(env, port));
  Object.assign(session, lifetimeOptions(env));
  session.purge = purgeOptions(env);
  session.privacy = privacyOptions(env);
  session.cache = cacheOptions(env);
  session.metrics = { enabled: onOff(env.SESSION_METRICS, true, 'SESSION_METRICS') }; // GET /metrics, admins only
  // 'off' behind a transaction pooler (PgBouncer pool_mode=transaction): no named prepared statements.
  // Unset leaves the module's default.
  if (present(env.SESSION_PREPARED_STATEMENTS))
    session.preparedStatements = onOff(env.SESSION_PREPARED_STATEMENTS.trim(), true, 'SESSION_PREPARED_STATEMENTS');
  // POST /admin/users/:userId/impersonate, admins only; SESSION_IMPERSONATION_MAX_DURATION (module default 1h).
  session.impersonation = { enabled: onOff(env.SESSION_IMPERSONATION, true, 'SESSION_IMPERSONATION') };
  if (present(env.SESSION_IMPERSONATION_MAX_DURATION))
    session.impersonation.maxDuration = env.SESSION_IMPERSONATION_MAX_DURATION;
  const encryption = encryptionOptions(env.SESSION_ENCRYPTION_KEYS);
  if (encryption) session.encryption = encryption;
  return {
    databaseUrl,
    port,
    adapter,
    session,
    loginRateLimit: integer(env.LOGIN_RATE_LIMIT, 30, 'LOGIN_RATE_LIMIT'),
    accountRateLimit: integer(env.ACCOUNT_RATE_LIMIT, 10, 'ACCOUNT_RATE_LIMIT'),
    accountRateWindowMs: duration(env.ACCOUNT_RATE_WINDOW, 15 * 60_000, 'ACCOUNT_RATE_WINDOW', 1_000),
    requestTimeoutMs: duration(env.REQUEST_TIMEOUT, 30_000, 'REQUEST_TIMEOUT', 1_000),
    trustProxy: trustProxy(env.TRUST_PROXY),
  };
}

/** CSRF origins, flood limits, per-user session limit, step-up age, client binding. */
function securityOptions(env: NodeJS.ProcessEnv, port: number): Partial<SessionModuleOptions> {
  const origins = env.SESSION_ALLOWED_ORIGINS
    ? env.SESSION_ALLOWED_ORIGINS.split(',')
        .map((origin) => origin.trim())
        .filter(Boolean)
    : [`http://localhost:${port}`, `http://127.0.0.1:${port}`];
  const options: Partial<SessionModuleOptions> = { csrf: { allowedOrigins: origins } };
  if (present(env.SESSION_FLOOD_LIMIT) || present(env.SESSION_FLOOD_WINDOW)) {
    options.flood = {
      ...(present(env.SESSION_FLOOD_LIMIT)
        ? { limit: integer(env.SESSION_FLOOD_LIMIT, 0, 'SESSION_FLOOD_LIMIT') }
        : {}),
      ...(present(env.SESSION_FLOOD_WINDOW) ? { window: env.SESSION_FLOOD_WINDOW } : {}),
    };
  }
  if (present(env.SESSION_MAX_PER_USER)) {
    options.sessionLimit = {
      maxSessionsPerUser: integer(env.SESSION_MAX_PER_USER, 0, 'SESSION_MAX_PER_USER'),
      ...(present(env.SESSION_LIMIT_POLICY) ? { policy: env.SESSION_LIMIT_POLICY as SessionLimitPolicy } : {}),
    };
  } else if (present(env.SESSION_LIMIT_POLICY)) {
    throw new DemoConfigError('SESSION_LIMIT_POLICY needs SESSION_MAX_PER_USER');
  }
  if (present(env.SESSION_FRESH_AGE)) options.stepUp = { maxAge: env.SESSION_FRESH_AGE };
  if (present(env.SESSION_REJECT_UA_CHANGE))
    options.clientBinding = { rejectOnUserAgentChange: env.SESSION_REJECT_UA_CHANGE === 'true' };
  return options;
}

/**
 * "Remember me" (`rememberMe: true` at login): SESSION_REMEMBER_IDLE_TIMEOUT and
 * SESSION_REMEMBER_ABSOLUTE_TIMEOUT, default 7d / 30d. Guest sessions (GET/PATCH /cart):
 * SESSION_GUESTS 'on' (default) or 'off', SESSION_GUEST_IDLE_TIMEOUT and
 * SESSION_GUEST_ABSOLUTE_TIMEOUT (module defaults 20m / 6h), SESSION_GUEST_CREATE_LIMIT guest
 * sessions per client address per SESSION_GUEST_CREATE_WINDOW (module defaults 30 / 10m).
 * The module validates the durations.
 */
function lifetimeOptions(env: NodeJS.ProcessEnv): Partial<SessionModuleOptions> {
  const guests: SessionGuestOptions = { enabled: onOff(env.SESSION_GUESTS, true, 'SESSION_GUESTS') };
  if (present(env.SESSION_GUEST_IDLE_TIMEOUT)) guests.idleTimeout = env.SESSION_GUEST_IDLE_TIMEOUT;
  if (present(env.SESSION_GUEST_ABSOLUTE_TIMEOUT)) guests.absoluteTimeout = env.SESSION_GUEST_ABSOLUTE_TIMEOUT;
  if (present(env.SESSION_GUEST_CREATE_LIMIT))
    guests.createLimit = integer(env.SESSION_GUEST_CREATE_LIMIT, 0, 'SESSION_GUEST_CREATE_LIMIT');
  if (present(env.SESSION_GUEST_CREATE_WINDOW)) guests.createWindow = env.SESSION_GUEST_CREATE_WINDOW;
  return {
    lifetimes: {
      remember: {
        idleTimeout: present(env.SESSION_REMEMBER_IDLE_TIMEOUT) ? env.SESSION_REMEMBER_IDLE_TIMEOUT : '7d',
        absoluteTimeout: present(env.SESSION_REMEMBER_ABSOLUTE_TIMEOUT) ? env.SESSION_REMEMBER_ABSOLUTE_TIMEOUT : '30d',
      },
    },
    guests,
  };
}

function onOff(value: string | undefined, fallback: boolean, name: string): boolean {
  if (!present(value)) return fallback;
  if (value !== 'on' && value !== 'off') throw new DemoConfigError(`${name} must be 'on' or 'off', got '${value}'`);
  return value === 'on';
}

/**
 * SESSION_ENCRYPTION_KEYS: `id:base64key` pairs separated by commas, newest first (the first
 * encrypts, all decrypt), e.g. `2026-12:$(openssl rand -base64 32)`. The module validates each
 * key without printing it. Unset: data is stored in plain JSON.
 */
function encryptionOptions(value: string | undefined): SessionModuleOptions['encryption'] {
  if (!present(value?.trim())) return undefined;
  const keys = value!.split(',').map((pair, i) => {
    const at = pair.indexOf(':');
    if (at < 0) throw new DemoConfigError(`SESSION_ENCRYPTION_KEYS: entry ${i + 1} must be id:base64key`);
    return { id: pair.slice(0, at).trim(), key: pair.slice(at + 1).trim() };
  });
  return { keys };
}

function present(value: string | undefined): value is string {
  return value !== undefined && value !== '';
}

function trustProxy(value: string | undefined): boolean | string | undefined {
  if (!present(value)) return undefined;
  return value === 'true' || value === 'false' ? value === 'true' : value;
}

function integer(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value)) throw new DemoConfigError(`${name} must be a non-negative integer, got '${value}'`);
  return Number(value);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** A duration such as '500ms', '30s', '15m', '1h' (or plain milliseconds), at least `min` ms. */
function duration(value: string | undefined, fallback: number, name: string, min: number): number {
  if (!present(value)) return fallback;
  const match = /^(\d+)(ms|s|m|h)?$/.exec(value.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] ?? 'ms'] : NaN;
  if (!Number.isSafeInteger(ms) || ms < min)
    throw new DemoConfigError(
      `${name} must be a duration of at least ${min} ms such as '30s' or '15m', got '${value}'`,
    );
  return ms;
}

/**
 * SESSION_CACHE: 'on' (default in the demo) or 'off'; SESSION_CACHE_TTL: a duration the
 * module validates (at most 60 s). On by default here, so `npm start` shows the cached hot path.
 */
function cacheOptions(env: NodeJS.ProcessEnv): SessionCacheOptions {
  const ttl = env.SESSION_CACHE_TTL?.trim();
  return { enabled: onOff(env.SESSION_CACHE?.trim(), true, 'SESSION_CACHE'), ...(ttl ? { ttl } : {}) };
}

/** PERSONAL_DATA_RETENTION: a duration or 'forever' (privacy.personalDataRetention); the module validates it. */
export function privacyOptions(env: NodeJS.ProcessEnv): SessionModuleOptions['privacy'] {
  const retention = env.PERSONAL_DATA_RETENTION?.trim();
  if (!retention) return {};
  return { personalDataRetention: retention === 'forever' ? false : retention };
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
