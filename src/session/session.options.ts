import { validateCronExpression } from 'cron';
import { SessionAdminOptions } from './admin/admin.options.js';
import { defaultCsrfCookieName, SessionCsrfOptions } from './csrf/csrf.options.js';
import { formatDuration, parseDuration, type Duration } from './duration.js';
import { SessionEncryptionOptions, toKeyObject } from './encryption/encryption.options.js';
import { SessionGuestOptions } from './guest/guest.options.js';
import { SessionImpersonationOptions } from './impersonation/impersonation.options.js';
import { lifetimeProblems, lifetimeProfiles } from './lifetime/lifetime-profiles.js';
import { PROFILE_NAME, RESERVED_PROFILES, SessionLifetimeOptions } from './lifetime/lifetime.options.js';
import { SessionMetricsOptions } from './metrics/metrics.options.js';
import * as is from './option-schema.js';
import { SessionOptionsError } from './option-schema.js';
import { SessionPrivacyOptions } from './privacy/privacy.options.js';
import * as security from './security/security.options.js';
import {
  resolveSecondFactor,
  SECOND_FACTOR_DEFAULTS,
  SessionSecondFactorOptions,
} from './second-factor/second-factor.options.js';
import { SessionSocketOptions } from './socket/socket.options.js';

export { SessionOptionsError };
export type SessionTransportKind = 'cookie' | 'bearer';
export type SameSite = 'lax' | 'strict' | 'none';

// Each option is declared once: its type, check and one-line doc as a property of a schema class
// below (or of its feature's *.options.ts), its default in DEFAULTS. A duration also gets its
// `<name>Ms` line in resolve(); a rule between options goes in RULES.

export class SessionCookieOptions {
  /** A `__Host-` name makes browsers refuse the cookie without Secure, with a Domain or a Path other than '/'. */
  @is.CookieName() name?: string;
  /** Only a name without a `__Host-`/`__Secure-` prefix may turn it off (plain-http development). */
  @is.Bool() secure?: boolean;
  @is.OneOf(['lax', 'strict', 'none']) sameSite?: SameSite;
  /** Not allowed with a `__Host-` name. */
  @is.Text(/^\.?[a-z0-9.-]{1,253}$/i, 'must be a host name') domain?: string;
  /** Must be '/' with a `__Host-` name. */
  @is.Text(/^\/[\x21-\x3a\x3c-\x7e]*$/, "must start with '/' and hold no ';', spaces or control characters")
  path?: string;
}

const cronError = (v: unknown) => (typeof v === 'string' ? validateCronExpression(v).error?.message : 'not a string');

export class SessionPurgeOptions {
  /** false: no scheduled job (`SessionPurgeService.runOnce()` and `npm run purge` still work). */
  @is.Bool() enabled?: boolean;
  /** When the job runs, in cron syntax (an optional leading seconds field). */
  @is.Check((v) => !cronError(v), (v) => `must be a cron expression such as '0 3 * * *' (${cronError(v)})`)
  cron?: string;
  /** Rows deleted per batch; each batch is one short transaction. */
  @is.Int(1, 100_000) batchSize?: number;
  /**
   * Share of the time a run spends in batches, so request traffic, autovacuum and replicas keep up
   * with a large backlog: after a batch that took t, the run pauses t × (1 − dutyCycle) / dutyCycle.
   */
  @is.Fraction(0.001, 1) dutyCycle?: number;
  /** The purge drops each weekly partition of the audit log whose whole week is older than this; false keeps them forever. */
  @is.Dur({ min: 1, or: false }) auditRetention?: Duration | false;
}

export class SessionCacheOptions {
  /** A hot session costs no SQL per request; a LISTEN connection per instance keeps the cache coherent. */
  @is.Bool() enabled?: boolean;
  /** Sessions held at once, least recently used dropped first (lru-cache allocates its index up front). */
  @is.Int(1, 1_000_000) maxEntries?: number;
  /** How long an entry may be served unread: NOTIFY evicts on change, the TTL bounds what a dead listener misses. */
  @is.Dur({ min: 1, max: '60s' }) ttl?: Duration;
  /**
   * Announce every session change on the `nest_pg_session` channel (NOTIFY), so caches evict.
   * Default: `enabled` or `sockets.enabled`. Set true on instances that do not cache when others in the fleet do. Off
   * without a cache because Postgres serialises the commits of all notifying transactions.
   */
  @is.Bool() notify?: boolean;
}

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

type Partly<T> = { [K in keyof T]?: T[K] extends object | undefined ? Partly<T[K]> : T[K] };
type Group = Record<string, unknown>;
/** T with the defaults D filled in: those keys are no longer optional. */
type Filled<T, D> = Omit<T, keyof D> & {
  [K in keyof D & keyof T]-?: D[K] extends Group ? Filled<NonNullable<T[K]>, D[K]> : Exclude<T[K], undefined>;
};

const isGroup = (value: unknown): value is Group =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && typeof value !== 'function';
const isGiven = (value: unknown) => value !== undefined && value !== null;
const at = (root: unknown, path: string) =>
  path.split('.').reduce<unknown>((o, key) => (isGroup(o) ? o[key] : undefined), root);

/** The given options over the defaults, group by group; a given value is kept as the very object. */
function fill(given: Group, defaults: Group): Group {
  const filled: Group = { ...defaults };
  for (const [key, value] of Object.entries(given)) if (isGiven(value)) filled[key] = value;
  for (const [key, value] of Object.entries(defaults)) {
    if (isGroup(value)) filled[key] = fill(isGroup(given[key]) ? given[key] : {}, value);
  }
  return filled;
}

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

/** Cookie prefix rules (RFC 6265bis), so a browser never silently drops a cookie we set. */
function prefixProblem(name: string, cookie: ResolvedCookieOptions): string | undefined {
  if (/^__(host|secure)-/i.test(name) && !/^__(Host|Secure)-/.test(name))
    return "looks like a cookie prefix but is not spelled '__Host-' or '__Secure-'";
  if (/^__(Host|Secure)-/.test(name) && !cookie.secure) return 'needs cookie.secure: true';
  if (name.startsWith('__Host-') && cookie.domain !== undefined) return 'must not go with a cookie.domain';
  if (name.startsWith('__Host-') && cookie.path !== '/') return "needs cookie.path '/'";
}

/**
 * Rules between options, on resolved values; each returns '<option>: <problem>' when broken.
 * `show(path)` writes an option as the user gave it, or its default marked '(default)'.
 */
type Rule = (o: ResolvedSessionOptions, show: (path: string) => string, given: (path: string) => boolean) => unknown;
const RULES: Rule[] = [
  // `default` and `guest` are spelled elsewhere in the options; naming them here would say it twice.
  (_o, _show, given) =>
    RESERVED_PROFILES.filter((name) => given(`lifetimes.${name}`)).map(
      (name) =>
        `lifetimes.${name}: is a reserved name: ${name === 'default' ? 'set idleTimeout and absoluteTimeout' : 'set guests.idleTimeout and guests.absoluteTimeout'} instead`,
    ),
  lifetimeProblems,
  // A default idle timeout above a short absolute one is harmless: the absolute one ends the session first.
  (o, show, given) =>
    given('idleTimeout') &&
    o.idleTimeoutMs > o.absoluteTimeoutMs &&
    `idleTimeout: ${show('idleTimeout')} must not exceed absoluteTimeout ${show('absoluteTimeout')}`,
  (o, show) =>
    o.touchIntervalMs >= o.idleTimeoutMs &&
    `touchInterval: ${show('touchInterval')} must be shorter than idleTimeout ${show('idleTimeout')}`,
  (o, show) =>
    o.rotationGraceMs >= o.idleTimeoutMs &&
    `rotationGrace: ${show('rotationGrace')} must be shorter than idleTimeout ${show('idleTimeout')}`,
  // Rotating again inside the grace window would retire a token that requests may still carry.
  (o, show) =>
    o.rotationIntervalMs !== 0 &&
    o.rotationIntervalMs <= o.rotationGraceMs &&
    `rotationInterval: ${show('rotationInterval')} must be 0 (no rotation) or longer than rotationGrace ${show('rotationGrace')}`,
  (o, show) => {
    const problem = prefixProblem(o.cookie.name, o.cookie);
    return problem && `cookie.name: ${show('cookie.name')} ${problem}`;
  },
  (o, show) =>
    o.cookie.sameSite === 'none' &&
    !o.cookie.secure &&
    `cookie.sameSite: ${show('cookie.sameSite')} needs cookie.secure: true`,
  // The CSRF cookie is written beside the session cookie, with its attributes.
  (o, show) =>
    o.csrf.cookieName === o.cookie.name &&
    `csrf.cookieName: ${show('csrf.cookieName')} must differ from the session cookie's name`,
  // (A default name takes the session cookie's prefix, judged above.)
  (o, show, given) => {
    const problem = given('csrf.cookieName') && o.csrf.cookieName && prefixProblem(o.csrf.cookieName, o.cookie);
    return problem && `csrf.cookieName: ${show('csrf.cookieName')} ${problem}`;
  },
  // A cache whose own instance stays silent would let the others serve its changes stale.
  (o) => o.cache.enabled && !o.cache.notify && 'cache.notify: cannot be false while cache.enabled is true',
  // Rows are gone by then anyway: a longer one would promise a minimisation that never happens.
  (o, show) =>
    o.privacy.personalDataRetentionMs !== null &&
    o.purge.auditRetentionMs !== null &&
    o.privacy.personalDataRetentionMs > o.purge.auditRetentionMs &&
    `privacy.personalDataRetention: ${show('privacy.personalDataRetention')} must not exceed purge.auditRetention ` +
      `${show('purge.auditRetention')} (audit rows are deleted then), or be false`,
  (o, _show, given) =>
    !o.encryption &&
    (given('encryption.encryptWrites') || given('encryption.readPlaintext')) &&
    'encryption.keys: must be given (at least one key) for encryptWrites or readPlaintext to mean anything',
  (o) =>
    o.admin.enabled &&
    typeof o.admin.authorize !== 'function' &&
    'admin.authorize: must be a function (session, request) => boolean | Promise<boolean> when admin.enabled is true',
];

/**
 * Routes are fixed when the module is built, before a forRootAsync factory runs. So `enabled`
 * and `path` come from where SessionModule is imported (`forRoot({ admin })`, or `admin`
 * beside `useFactory`); `authorize` may come from either, e.g. from the factory to use
 * injected services. Contradictions stop the app at start-up.
 */
function mountedAdmin(mounted?: SessionAdminOptions, fromOptions?: SessionAdminOptions) {
  if (mounted === fromOptions || !isGroup(fromOptions)) return fromOptions ?? mounted; // validation names a non-object
  const problem =
    fromOptions.enabled === true && mounted?.enabled !== true
      ? 'admin.enabled: true came from the options factory, but routes are built before it runs: ' +
        'pass admin: { enabled: true } to SessionModule.forRootAsync() beside useFactory'
      : fromOptions.enabled === false && mounted?.enabled === true
        ? 'admin.enabled: false in the options factory, but true where SessionModule is imported'
        : isGiven(fromOptions.path) && fromOptions.path !== (mounted?.path ?? DEFAULTS.admin.path)
          ? 'admin.path: must be given where SessionModule is imported (beside useFactory), not by the factory'
          : undefined;
  if (problem) throw SessionOptionsError.of([problem]);
  return { ...mounted, ...fromOptions, path: mounted?.path };
}

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
  if (module) input = { ...input, admin: mountedAdmin(module.admin, input.admin) };
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
