import { SessionAdminOptions } from './admin/admin.options.js';
import { SessionCacheOptions } from './cache/cache.options.js';
import { defaultCsrfCookieName, SessionCsrfOptions } from './csrf/csrf.options.js';
import { formatDuration, parseDuration, type Duration } from './duration.js';
import { SessionEncryptionOptions, toKeyObject } from './encryption/encryption.options.js';
import { SessionGuestOptions } from './guest/guest.options.js';
import { SessionImpersonationOptions } from './impersonation/impersonation.options.js';
import { lifetimeProfiles } from './lifetime/lifetime-profiles.js';
import { PROFILE_NAME, SessionLifetimeOptions } from './lifetime/lifetime.options.js';
import { SessionMetricsOptions } from './metrics/metrics.options.js';
import * as is from './option-schema.js';
import {
  at,
  fill,
  isGiven,
  isGroup,
  SessionOptionsError,
  type Filled,
  type Group,
  type Partly,
} from './option-schema.js';
import { SessionPrivacyOptions } from './privacy/privacy.options.js';
import { SessionPurgeOptions } from './purge/purge.options.js';
import * as security from './security/security.options.js';
import {
  resolveSecondFactor,
  SECOND_FACTOR_DEFAULTS,
  SessionSecondFactorOptions,
} from './second-factor/second-factor.options.js';
import { mountedAdmin, RULES } from './session-option-rules.js';
import { SessionSocketOptions } from './socket/socket.options.js';
import { SessionCookieOptions } from './transport/cookie.options.js';

export { SessionOptionsError, SessionCacheOptions, SessionCookieOptions, SessionPurgeOptions };
export type { SameSite } from './transport/cookie.options.js';
export type SessionTransportKind = 'cookie' | 'bearer';

// Each option is declared once: its type, check and one-line doc as a property of a schema class
// below (or of its feature's *.options.ts), its default in DEFAULTS. A duration also gets its
// `<name>Ms` line in resolve(); a rule between options goes in RULES (session-option-rules.ts).

/** What `SessionModule.forRoot()` takes. Every field is optional; defaults follow NIST SP 800-63B AAL2. */
export class SessionModuleOptions {
  /** Ends a session this long after its last request. */
  @is.Dur({ min: 1 }) idleTimeout?: Duration;
  /** Ends a session this long after login, whatever the activity. */
  @is.Dur({ min: 1 }) absoluteTimeout?: Duration;
  /**
   * Named lifetimes a login may choose instead (`create(req, res, { lifetime: 'remember' })`),
   * e.g. `{ remember: { idleTimeout: '7d', absoluteTimeout: '30d' } }`. The one above is `default`.
   */
  @is.NestedMap(
    () => SessionLifetimeOptions,
    PROFILE_NAME,
    "must be a profile name such as 'remember' (a letter, then letters, digits, '_' or '-', at most 32)",
  )
  lifetimes?: Record<string, SessionLifetimeOptions>;
  /** No lifetime (of any profile, guests included) may have a longer idle timeout. */
  @is.Dur({ min: 1 }) maxIdleTimeout?: Duration;
  /** No lifetime may have a longer absolute timeout; browsers keep a cookie at most 400 days anyway. */
  @is.Dur({ min: 1 }) maxAbsoluteTimeout?: Duration;
  /** Guest sessions for visitors who have not logged in (off by default). */
  @is.Nested(() => SessionGuestOptions) guests?: SessionGuestOptions;
  /** How stale `last_seen_at` may get before a request writes it. Default: idleTimeout / 10, at most a minute. */
  @is.Dur({ min: 1 }) touchInterval?: Duration;
  /** Replace the token this often; 0 turns periodic rotation off. Under a second would write on most requests. */
  @is.Dur({ min: '1s', or: 0 }) rotationInterval?: Duration;
  /** How long a rotated-out token still works for in-flight requests. Default: 30s, at most idleTimeout / 2. */
  @is.Dur() rotationGrace?: Duration;
  /** 'cookie', or 'bearer' (`Authorization: Bearer <token>`). */
  @is.OneOf(['cookie', 'bearer']) transport?: SessionTransportKind;
  @is.Nested(() => SessionCookieOptions) cookie?: SessionCookieOptions;
  /** Bearer transport: response header that carries a rotated token. */
  @is.HeaderName() bearerRotationHeader?: string;
  /** Upper bound of a session's JSON data, in bytes. */
  @is.Int(2, 1_048_576) maxDataBytes?: number;
  /**
   * Send the hot-path statements as named server-side prepared statements. false behind a
   * transaction pooler (PgBouncer `pool_mode=transaction` before 1.21, Supavisor, RDS Proxy),
   * where a name prepared on one server connection is missing or taken on the next.
   */
  @is.Bool() preparedStatements?: boolean;
  /** The scheduled purge of expired sessions and old audit rows. */
  @is.Nested(() => SessionPurgeOptions) purge?: SessionPurgeOptions;
  /** The admin HTTP API (audit queries, any user's sessions). */
  @is.Nested(() => SessionAdminOptions) admin?: SessionAdminOptions;
  /** In-process cache of validated sessions, kept coherent across instances by LISTEN/NOTIFY. */
  @is.Nested(() => SessionCacheOptions) cache?: SessionCacheOptions;
  /** Prometheus metrics through prom-client (an optional peer dependency). */
  @is.Nested(() => SessionMetricsOptions) metrics?: SessionMetricsOptions;
  @is.Nested(() => SessionCsrfOptions) csrf?: SessionCsrfOptions;
  @is.Nested(() => security.SessionFloodOptions) flood?: security.SessionFloodOptions;
  @is.Nested(() => security.SessionLimitOptions) sessionLimit?: security.SessionLimitOptions;
  @is.Nested(() => security.SessionStepUpOptions) stepUp?: security.SessionStepUpOptions;
  @is.Nested(() => security.SessionClientBindingOptions) clientBinding?: security.SessionClientBindingOptions;
  /** Sessions on WebSocket and socket.io connections (SessionSockets). */
  @is.Nested(() => SessionSocketOptions) sockets?: SessionSocketOptions;
  /** An admin acting as a user, time-limited and audited (off by default). */
  @is.Nested(() => SessionImpersonationOptions) impersonation?: SessionImpersonationOptions;
  /** Data minimisation: when the purge clears IP addresses and user agents from audit rows. */
  @is.Nested(() => SessionPrivacyOptions) privacy?: SessionPrivacyOptions;
  /** Session data encrypted at rest with AES-256-GCM (off until `keys` are given; docs/encryption.md). */
  @is.Nested(() => SessionEncryptionOptions) encryption?: SessionEncryptionOptions;
  /** Sessions waiting for a second factor: their lifetime and attempts. */
  @is.Nested(() => SessionSecondFactorOptions) secondFactor?: SessionSecondFactorOptions;
}

/** Every default, as a user would write it. */
export const DEFAULTS = {
  idleTimeout: '30m',
  absoluteTimeout: '12h',
  maxIdleTimeout: '30d',
  maxAbsoluteTimeout: '400d',
  guests: {
    enabled: false,
    idleTimeout: '20m',
    absoluteTimeout: '6h',
    maxDataBytes: 4_096,
    createLimit: 30,
    createWindow: '10m',
  },
  touchInterval: '60s', // at most: idleTimeout / 10 when that is shorter
  rotationInterval: '15m',
  rotationGrace: '30s', // at most: idleTimeout / 2 when that is shorter
  transport: 'cookie',
  cookie: { name: '__Host-sid', secure: true, sameSite: 'lax', path: '/' },
  bearerRotationHeader: 'session-token',
  maxDataBytes: 65_536,
  preparedStatements: true,
  purge: { enabled: true, cron: '*/5 * * * *', batchSize: 5_000, dutyCycle: 0.1, auditRetention: '90d' },
  admin: { enabled: false, path: 'admin' },
  cache: { enabled: false, maxEntries: 10_000, ttl: '5s' }, // notify: as enabled || sockets.enabled
  metrics: { enabled: false, prefix: 'nest_pg_session_' },
  csrf: { enabled: true, headerName: 'x-csrf-token' }, // cookieName: 'csrf' with the session cookie's prefix
  flood: { limit: 100, window: '1m', maxSources: 10_000 },
  sessionLimit: { policy: 'evict-oldest' }, // applies only when sessionLimit is given
  stepUp: { maxAge: '5m' },
  clientBinding: { audit: true, rejectOnUserAgentChange: false },
  sockets: { enabled: false, recheckInterval: '10s' },
  impersonation: { enabled: false, maxDuration: '1h' },
  privacy: { personalDataRetention: '30d' }, // at most: purge.auditRetention when that is shorter
  encryption: { encryptWrites: true, readPlaintext: false }, // on when keys are given
  secondFactor: SECOND_FACTOR_DEFAULTS,
} as const satisfies Partly<SessionModuleOptions>;

const ms = (duration: Duration): number => parseDuration(duration)!;

/** Validated options with the defaults filled in, as the module reads them: every duration in ms. */
function resolve(o: Filled<SessionModuleOptions, typeof DEFAULTS>, given: SessionModuleOptions) {
  const idleTimeoutMs = ms(o.idleTimeout);
  const { auditRetention, ...purge } = o.purge;
  const { notify, ttl, ...cache } = o.cache;
  const guests = o.guests;
  return {
    idleTimeoutMs,
    absoluteTimeoutMs: ms(o.absoluteTimeout),
    lifetimes: lifetimeProfiles({
      default: [idleTimeoutMs, ms(o.absoluteTimeout)],
      guest: [ms(o.guests.idleTimeout), ms(o.guests.absoluteTimeout)],
      named: Object.entries(o.lifetimes ?? {}).map(([name, p]) => [name, ms(p.idleTimeout), ms(p.absoluteTimeout)]),
    }),
    maxIdleTimeoutMs: ms(o.maxIdleTimeout),
    maxAbsoluteTimeoutMs: ms(o.maxAbsoluteTimeout),
    guests: {
      enabled: guests.enabled,
      idleTimeoutMs: ms(guests.idleTimeout),
      absoluteTimeoutMs: ms(guests.absoluteTimeout),
      maxDataBytes: guests.maxDataBytes,
      createLimit: guests.createLimit,
      createWindowMs: ms(guests.createWindow),
    },
    touchIntervalMs: isGiven(given.touchInterval)
      ? ms(o.touchInterval)
      : Math.min(ms(o.touchInterval), Math.floor(idleTimeoutMs / 10)),
    rotationIntervalMs: ms(o.rotationInterval),
    // The default grace must not outlast a short idle timeout.
    rotationGraceMs: isGiven(given.rotationGrace)
      ? ms(o.rotationGrace)
      : Math.min(ms(o.rotationGrace), Math.floor(idleTimeoutMs / 2)),
    transport: o.transport,
    cookie: o.cookie,
    bearerRotationHeader: o.bearerRotationHeader.toLowerCase(),
    maxDataBytes: o.maxDataBytes,
    preparedStatements: o.preparedStatements,
    purge: { ...purge, auditRetentionMs: auditRetention === false ? null : ms(auditRetention) },
    admin: { ...o.admin, path: adminPath(o.admin) },
    // Sockets close on every instance within 1 s only if every change is announced.
    cache: { ...cache, ttlMs: ms(ttl), notify: notify ?? (cache.enabled || o.sockets.enabled) },
    metrics: o.metrics,
    csrf: {
      ...o.csrf,
      headerName: o.csrf.headerName.toLowerCase(),
      cookieName: o.csrf.cookieName ?? defaultCsrfCookieName(o.cookie.name),
    },
    flood: { limit: o.flood.limit, windowMs: ms(o.flood.window), maxSources: o.flood.maxSources },
    sessionLimit: isGiven(given.sessionLimit) ? o.sessionLimit : undefined,
    stepUp: { maxAgeMs: ms(o.stepUp.maxAge) },
    clientBinding: o.clientBinding,
    sockets: { enabled: o.sockets.enabled, recheckIntervalMs: ms(o.sockets.recheckInterval) },
    impersonation: { enabled: o.impersonation.enabled, maxDurationMs: ms(o.impersonation.maxDuration) },
    privacy: { personalDataRetentionMs: personalDataRetentionMs(o, given) },
    // Keys become KeyObjects at once: they print as `SecretKeyObject`, never as their bytes.
    encryption: o.encryption.keys && {
      keys: o.encryption.keys.map(({ id, key }) => ({ id, key: toKeyObject(key) })),
      encryptWrites: o.encryption.encryptWrites,
      readPlaintext: o.encryption.readPlaintext,
    },
    secondFactor: resolveSecondFactor(o.secondFactor),
  };
}

/** null: never cleared. The default never outlives the audit rows themselves; a given value is judged in RULES. */
function personalDataRetentionMs(o: Filled<SessionModuleOptions, typeof DEFAULTS>, given: SessionModuleOptions) {
  const retention = o.privacy.personalDataRetention;
  if (retention === false) return null;
  const auditRetention = o.purge.auditRetention;
  if (isGiven(given.privacy?.personalDataRetention) || auditRetention === false) return ms(retention);
  return Math.min(ms(retention), ms(auditRetention));
}

export type ResolvedSessionOptions = ReturnType<typeof resolve>;
export type ResolvedCookieOptions = ResolvedSessionOptions['cookie'];
export type ResolvedPurgeOptions = ResolvedSessionOptions['purge'];
export type ResolvedCacheOptions = ResolvedSessionOptions['cache'];
export type ResolvedMetricsOptions = ResolvedSessionOptions['metrics'];
export type ResolvedPrivacyOptions = ResolvedSessionOptions['privacy'];
export const DEFAULT_METRICS_PREFIX = DEFAULTS.metrics.prefix;

/** The admin API's route prefix, also read where the module is built. */
export const adminPath = (admin?: SessionAdminOptions) => (admin?.path ?? DEFAULTS.admin.path).replace(/^\//, '');

/**
 * Checks each option, fills in the defaults, converts durations to ms, then checks the rules
 * between options. Throws SessionOptionsError naming each bad option. The module passes
 * `module.admin`: the `admin` given where it was imported (for forRootAsync, beside useFactory).
 */
export function resolveSessionOptions(
  input: SessionModuleOptions = {},
  module?: { admin?: SessionAdminOptions },
): ResolvedSessionOptions {
  if (!isGroup(input as unknown))
    throw SessionOptionsError.of([`the options must be an object; got ${is.quoted(input)}`]);
  if (module) input = { ...input, admin: mountedAdmin(module.admin, input.admin, DEFAULTS.admin.path) };
  const problems = is.problemsOf(SessionModuleOptions, input);
  if (problems.length > 0) throw SessionOptionsError.of(problems);
  const resolved = resolve(fill(input as Group, DEFAULTS) as Filled<SessionModuleOptions, typeof DEFAULTS>, input);
  const given = (path: string) => isGiven(at(input, path));
  const show = (path: string) => {
    if (given(path)) return is.quoted(at(input, path));
    const ms = at(resolved, `${path}Ms`);
    return `${is.quoted(typeof ms === 'number' ? formatDuration(ms) : at(resolved, path))} (default)`;
  };
  const broken = RULES.flatMap((rule) => rule(resolved, show, given)).filter((problem) => typeof problem === 'string');
  if (broken.length > 0) throw SessionOptionsError.of(broken);
  return resolved;
}
