import 'reflect-metadata';
import { plainToInstance, Transform, Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateIf,
  ValidateNested,
  registerDecorator,
  validateSync,
  type ValidationArguments,
  type ValidationError,
} from 'class-validator';
import { validateCronExpression } from 'cron';
import {
  AdminOptionsSchema,
  mergeAdminOptions,
  resolveAdminOptions,
  type ResolvedAdminOptions,
  type SessionAdminOptions,
} from './admin/admin.options.js';
import { parseDuration, type Duration } from './duration.js';
import {
  metricsOptionsForValidation,
  MetricsOptionsSchema,
  resolveMetricsOptions,
  type ResolvedMetricsOptions,
  type SessionMetricsOptions,
} from './metrics/metrics.options.js';
import {
  ClientBindingOptionsSchema,
  CsrfOptionsSchema,
  csrfCookieProblem,
  FloodOptionsSchema,
  resolveSecurityOptions,
  SessionLimitOptionsSchema,
  StepUpOptionsSchema,
  type ResolvedSecurityOptions,
  type SecurityOptionsInput,
} from './security/security.options.js';

export type SessionTransportKind = 'cookie' | 'bearer';
export type SameSite = 'lax' | 'strict' | 'none';

export interface SessionCookieOptions {
  /** Default `__Host-sid`: the prefix makes browsers refuse it without Secure, with a Domain or a Path other than `/`. */
  name?: string;
  /** Default true. Only a non-`__Host-`/`__Secure-` name may turn it off (plain-http development). */
  secure?: boolean;
  /** Default 'lax'. */
  sameSite?: SameSite;
  /** Not allowed with a `__Host-` name. */
  domain?: string;
  /** Default '/'; must be '/' with a `__Host-` name. */
  path?: string;
}

/**
 * What `SessionModule.forRoot()` takes. Every field is optional; defaults follow NIST SP 800-63B AAL2.
 * Security options (csrf, flood, sessionLimit, stepUp, clientBinding): see security/security.options.ts.
 */
export interface SessionModuleOptions extends SecurityOptionsInput {
  /** Ends a session this long after its last request. Default '30m'. */
  idleTimeout?: Duration;
  /** Ends a session this long after login, whatever the activity. Default '12h'. */
  absoluteTimeout?: Duration;
  /** How stale `last_seen_at` may get before a request writes it. Default min(60s, idleTimeout / 10). */
  touchInterval?: Duration;
  /** Replace the token this often (0 turns periodic rotation off). Default '15m'. */
  rotationInterval?: Duration;
  /** How long a rotated-out token still works for in-flight requests. Default '30s'. */
  rotationGrace?: Duration;
  /** 'cookie' (default) or 'bearer' (`Authorization: Bearer <token>`). */
  transport?: SessionTransportKind;
  cookie?: SessionCookieOptions;
  /** Bearer transport: response header that carries a rotated token. Default 'session-token'. */
  bearerRotationHeader?: string;
  /** Upper bound of a session's JSON data, in bytes. Default 65536. */
  maxDataBytes?: number;
  /** The scheduled purge of expired sessions and old audit rows. */
  purge?: SessionPurgeOptions;
  /** The admin HTTP API (audit queries, any user's sessions). Off by default. */
  admin?: SessionAdminOptions;
  /** In-process cache of validated sessions, kept coherent across instances by LISTEN/NOTIFY. Off by default. */
  cache?: SessionCacheOptions;
  /** Prometheus metrics through prom-client (an optional peer dependency). Off by default. */
  metrics?: SessionMetricsOptions;
}

export interface SessionCacheOptions {
  /** Default false. On: a hot session costs no SQL per request; a LISTEN connection per instance keeps it coherent. */
  enabled?: boolean;
  /** Sessions (token hashes) held at once, least recently used dropped first. Default 10000. */
  maxEntries?: number;
  /**
   * How long an entry may be served before it is read again. Default '5s', at most '60s':
   * NOTIFY is what evicts on change; the TTL only bounds what a silently dead listener could miss.
   */
  ttl?: Duration;
  /**
   * Announce every session change on the `nest_pg_session` channel (NOTIFY), so caches evict.
   * Default: `enabled`. Set true on the instances that do not cache when others in the fleet do;
   * it cannot be false with the cache on. Off without a cache because Postgres serialises the
   * commits of all notifying transactions.
   */
  notify?: boolean;
}

export interface SessionPurgeOptions {
  /** false: no scheduled job (`SessionPurgeService.runOnce()` and `npm run purge` still work). Default true. */
  enabled?: boolean;
  /** When the job runs, in cron syntax (an optional leading seconds field). Default every 5 minutes. */
  cron?: string;
  /** Rows deleted per batch; each batch is one short transaction. Default 5000. */
  batchSize?: number;
  /**
   * Share of the time a run spends in batches, so request traffic, autovacuum and replicas
   * keep up with a large backlog: after a batch that took t, the run pauses
   * t × (1 − dutyCycle) / dutyCycle. 1 = no pause. Default 0.1 (a 100 ms batch, then 900 ms off).
   */
  dutyCycle?: number;
  /** Audit rows older than this are deleted by the purge; false keeps them forever. Default '90d'. */
  auditRetention?: Duration | false;
}

export interface ResolvedCookieOptions {
  name: string;
  secure: boolean;
  sameSite: SameSite;
  domain?: string;
  path: string;
}

/** Options after validation, with every duration in milliseconds. */
export interface ResolvedSessionOptions extends ResolvedSecurityOptions {
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
  touchIntervalMs: number;
  rotationIntervalMs: number;
  rotationGraceMs: number;
  transport: SessionTransportKind;
  cookie: ResolvedCookieOptions;
  bearerRotationHeader: string;
  maxDataBytes: number;
  purge: ResolvedPurgeOptions;
  admin: ResolvedAdminOptions;
  cache: ResolvedCacheOptions;
  metrics: ResolvedMetricsOptions;
}

export interface ResolvedCacheOptions {
  enabled: boolean;
  maxEntries: number;
  ttlMs: number;
  notify: boolean;
}

export interface ResolvedPurgeOptions {
  enabled: boolean;
  cron: string;
  batchSize: number;
  dutyCycle: number;
  /** null: audit rows are kept forever. */
  auditRetentionMs: number | null;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60_000;
export const DEFAULT_ABSOLUTE_TIMEOUT_MS = 12 * 3_600_000;
export const DEFAULT_ROTATION_INTERVAL_MS = 15 * 60_000;
export const DEFAULT_ROTATION_GRACE_MS = 30_000;
export const MAX_TOUCH_INTERVAL_MS = 60_000;
export const DEFAULT_PURGE_CRON = '*/5 * * * *';
export const DEFAULT_PURGE_BATCH_SIZE = 5_000;
export const DEFAULT_PURGE_DUTY_CYCLE = 0.1;
export const DEFAULT_AUDIT_RETENTION_MS = 90 * 86_400_000;
export const DEFAULT_CACHE_MAX_ENTRIES = 10_000;
export const DEFAULT_CACHE_TTL_MS = 5_000;
export const MAX_CACHE_TTL_MS = 60_000;

export class SessionOptionsError extends Error {
  override name = 'SessionOptionsError';
}

// ---- class-validator rules ------------------------------------------------------------

function IsDuration(options: { positive?: boolean } = {}) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isDuration',
      target: target.constructor,
      propertyName,
      validator: {
        validate(value: unknown) {
          const ms = parseDuration(value);
          return ms !== undefined && (!options.positive || ms > 0);
        },
        defaultMessage: (args?: ValidationArguments) =>
          `must be a ${options.positive ? 'positive' : 'non-negative'} duration ` +
          `(milliseconds, or a string like '30s', '30m', '12h'); got ${JSON.stringify(args?.value)}`,
      },
    });
}

function IsDurationAtMost(maxMs: number) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isDurationAtMost',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown) => (parseDuration(value) ?? 0) <= maxMs,
        defaultMessage: (args?: ValidationArguments) =>
          `must be at most ${maxMs} ms; got ${JSON.stringify(args?.value)}`,
      },
    });
}

/** The duration must be strictly below another option's duration (resolved with defaults). */
function IsShorterThan(other: keyof SessionOptionsSchema, resolveOther: (o: SessionOptionsSchema) => number) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isShorterThan',
      target: target.constructor,
      propertyName,
      validator: {
        validate(value: unknown, args?: ValidationArguments) {
          const mine = parseDuration(value);
          const theirs = resolveOther(args!.object as SessionOptionsSchema);
          return mine === undefined || Number.isNaN(theirs) || mine < theirs;
        },
        defaultMessage: (args?: ValidationArguments) =>
          `${JSON.stringify(args?.value)} must be shorter than ${String(other)} ` +
          `(${resolveOther(args!.object as SessionOptionsSchema)} ms)`,
      },
    });
}

/**
 * A rotation interval inside the grace window would drop a previous token while requests
 * may still carry it, and one below a second would write on nearly every request. 0 = off.
 */
const MIN_ROTATION_INTERVAL_MS = 1_000;
function IsZeroOrLongerThanGrace() {
  const graceOf = (o: SessionOptionsSchema) =>
    parseDuration(o.rotationGrace) ?? Math.min(DEFAULT_ROTATION_GRACE_MS, Math.floor(idleOf(o) / 2));
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isZeroOrLongerThanGrace',
      target: target.constructor,
      propertyName,
      validator: {
        validate(value: unknown, args?: ValidationArguments) {
          const ms = parseDuration(value);
          if (ms === undefined || ms === 0) return true;
          return ms > graceOf(args!.object as SessionOptionsSchema) && ms >= MIN_ROTATION_INTERVAL_MS;
        },
        defaultMessage: (args?: ValidationArguments) =>
          `${JSON.stringify(args?.value)} must be 0 (off), at least ${MIN_ROTATION_INTERVAL_MS} ms, and longer than rotationGrace ` +
          `(${graceOf(args!.object as SessionOptionsSchema)} ms)`,
      },
    });
}

/** Cookie prefix rules from RFC 6265bis, checked here so a browser never silently drops our cookie. */
function IsValidCookiePrefix() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isValidCookiePrefix',
      target: target.constructor,
      propertyName,
      validator: {
        validate(name: unknown, args?: ValidationArguments) {
          return cookiePrefixProblem(String(name), args!.object as CookieOptionsSchema) === undefined;
        },
        defaultMessage: (args?: ValidationArguments) =>
          `${cookiePrefixProblem(String(args?.value), args!.object as CookieOptionsSchema)}`,
      },
    });
}

function cookiePrefixProblem(name: string, cookie: CookieOptionsSchema): string | undefined {
  const secure = cookie.secure ?? true;
  if (name.startsWith('__Host-')) {
    if (!secure) return `a '__Host-' cookie requires cookie.secure: true`;
    if (cookie.domain !== undefined) return `a '__Host-' cookie must not set cookie.domain`;
    if ((cookie.path ?? '/') !== '/') return `a '__Host-' cookie requires cookie.path '/'`;
  }
  if (name.startsWith('__Secure-') && !secure) return `a '__Secure-' cookie requires cookie.secure: true`;
  if (/^__(host|secure)-/i.test(name) && !/^__(Host|Secure)-/.test(name)) {
    return `'${name}' looks like a cookie prefix but is not spelled '__Host-' or '__Secure-'`;
  }
  if ((cookie.sameSite ?? 'lax') === 'none' && !secure) return `cookie.sameSite 'none' requires cookie.secure: true`;
  return undefined;
}

class CookieOptionsSchema implements SessionCookieOptions {
  @IsOptional()
  @IsString()
  @Matches(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/, { message: 'must be a cookie token of 1..64 characters' })
  @IsValidCookiePrefix()
  // The default is filled in here (also over an explicit undefined) so the prefix rules judge it too.
  @Transform(({ value }) => value ?? '__Host-sid')
  name?: string = '__Host-sid';

  @IsOptional()
  @IsBoolean()
  secure?: boolean;

  @IsOptional()
  @IsIn(['lax', 'strict', 'none'])
  sameSite?: SameSite;

  @IsOptional()
  @IsString()
  @Matches(/^\.?[a-z0-9.-]{1,253}$/i, { message: 'must be a host name' })
  domain?: string;

  @IsOptional()
  @IsString()
  @Matches(/^\/[\x21-\x3a\x3c-\x7e]*$/, {
    message: "must start with '/' and hold no ';', spaces or control characters",
  })
  path?: string;
}

function IsCronExpression() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isCronExpression',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown) => typeof value === 'string' && validateCronExpression(value).valid,
        defaultMessage: (args?: ValidationArguments) =>
          `must be a cron expression such as '*/5 * * * *'; got ${JSON.stringify(args?.value)}` +
          (typeof args?.value === 'string' ? ` (${validateCronExpression(args.value).error?.message})` : ''),
      },
    });
}

class PurgeOptionsSchema implements SessionPurgeOptions {
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  @IsOptional()
  @IsCronExpression()
  cron?: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100_000)
  batchSize?: number;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.001)
  @Max(1)
  dutyCycle?: number;

  // false, or a positive duration: retention 0 would delete every audit row as it is written.
  @IsOptional()
  @ValidateIf((o: PurgeOptionsSchema) => o.auditRetention !== false)
  @IsDuration({ positive: true })
  auditRetention?: Duration | false;
}

class CacheOptionsSchema implements SessionCacheOptions {
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  // lru-cache allocates its index for every entry up front: a million is ~25 MB before any session.
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  maxEntries?: number;

  @IsOptional()
  @IsDuration({ positive: true })
  @IsDurationAtMost(MAX_CACHE_TTL_MS)
  ttl?: Duration;

  @IsOptional()
  @IsBoolean()
  notify?: boolean;
}

const idleOf = (o: SessionOptionsSchema) => parseDuration(o.idleTimeout ?? DEFAULT_IDLE_TIMEOUT_MS) ?? NaN;
const absoluteOf = (o: SessionOptionsSchema) => parseDuration(o.absoluteTimeout ?? DEFAULT_ABSOLUTE_TIMEOUT_MS) ?? NaN;

class SessionOptionsSchema implements SessionModuleOptions {
  @IsOptional()
  @IsDuration({ positive: true })
  @IsShorterThan('absoluteTimeout', (o) => absoluteOf(o) + 1) // idle may equal absolute
  idleTimeout?: Duration;

  @IsOptional()
  @IsDuration({ positive: true })
  absoluteTimeout?: Duration;

  @IsOptional()
  @IsDuration({ positive: true })
  @IsShorterThan('idleTimeout', idleOf)
  touchInterval?: Duration;

  @IsOptional()
  @IsDuration()
  @IsZeroOrLongerThanGrace()
  rotationInterval?: Duration;

  @IsOptional()
  @IsDuration()
  @IsShorterThan('idleTimeout', idleOf)
  rotationGrace?: Duration;

  @IsOptional()
  @IsIn(['cookie', 'bearer'])
  transport?: SessionTransportKind;

  @IsOptional()
  @ValidateNested()
  @Type(() => CookieOptionsSchema)
  cookie?: CookieOptionsSchema;

  @IsOptional()
  @IsString()
  @Matches(/^[a-z][a-z0-9-]{0,63}$/i, { message: 'must be an HTTP header name' })
  bearerRotationHeader?: string;

  @IsOptional()
  @IsInt()
  @Min(2)
  @Max(1_048_576)
  maxDataBytes?: number;

  @IsOptional()
  @ValidateNested()
  @Type(() => PurgeOptionsSchema)
  purge?: PurgeOptionsSchema;

  @IsOptional()
  @ValidateNested()
  @Type(() => AdminOptionsSchema)
  admin?: AdminOptionsSchema;

  @IsOptional()
  @ValidateNested()
  @Type(() => CacheOptionsSchema)
  cache?: CacheOptionsSchema;
  @IsOptional()
  @ValidateNested()
  @Type(() => MetricsOptionsSchema)
  metrics?: MetricsOptionsSchema;

  @IsOptional()
  @ValidateNested()
  @Type(() => CsrfOptionsSchema)
  csrf?: CsrfOptionsSchema;

  @IsOptional()
  @ValidateNested()
  @Type(() => FloodOptionsSchema)
  flood?: FloodOptionsSchema;

  @IsOptional()
  @ValidateNested()
  @Type(() => SessionLimitOptionsSchema)
  sessionLimit?: SessionLimitOptionsSchema;

  @IsOptional()
  @ValidateNested()
  @Type(() => StepUpOptionsSchema)
  stepUp?: StepUpOptionsSchema;

  @IsOptional()
  @ValidateNested()
  @Type(() => ClientBindingOptionsSchema)
  clientBinding?: ClientBindingOptionsSchema;
}

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((error) => {
    const path = prefix + error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => `${path}: ${message}`);
    return [...own, ...flatten(error.children ?? [], `${path}.`)];
  });
}

/**
 * Validates options with class-validator and fills in defaults. Throws SessionOptionsError naming each bad option.
 * The module passes `module.admin`: the `admin` given where it was imported (for forRootAsync, beside useFactory).
 */
export function resolveSessionOptions(
  input: SessionModuleOptions = {},
  module?: { admin?: SessionAdminOptions },
): ResolvedSessionOptions {
  if (input === null || typeof input !== 'object')
    throw new SessionOptionsError('SessionModule options must be an object');
  if (module) {
    const merged = mergeAdminOptions(module.admin, input.admin);
    if ('error' in merged) throw new SessionOptionsError(`Invalid SessionModule options:\n  - ${merged.error}`);
    if (merged.admin !== input.admin) input = { ...input, admin: merged.admin };
  }
  const schema = plainToInstance(
    SessionOptionsSchema,
    'metrics' in input ? { ...input, metrics: metricsOptionsForValidation(input.metrics) } : input,
  );
  const errors = validateSync(schema, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  if (errors.length > 0) {
    throw new SessionOptionsError(`Invalid SessionModule options:\n  - ${flatten(errors).join('\n  - ')}`);
  }
  const idleTimeoutMs = idleOf(schema);
  const absoluteTimeoutMs = absoluteOf(schema);
  const cookie = input.cookie ?? {};
  const resolvedCookie = {
    name: cookie.name ?? '__Host-sid',
    secure: cookie.secure ?? true,
    sameSite: cookie.sameSite ?? 'lax',
    domain: cookie.domain,
    path: cookie.path ?? '/',
  };
  const security = resolveSecurityOptions(input, resolvedCookie.name);
  // A default CSRF cookie name inherits the session cookie's prefix, whose rules the schema checks.
  const csrfProblem =
    input.csrf?.cookieName === undefined ? undefined : csrfCookieProblem(security.csrf.cookieName, resolvedCookie);
  if (csrfProblem) throw new SessionOptionsError(`Invalid SessionModule options:\n  - ${csrfProblem}`);
  // A cache whose own instance stays silent would serve this instance's changes to the others.
  if (input.cache?.enabled === true && input.cache.notify === false) {
    throw new SessionOptionsError(
      'Invalid SessionModule options:\n  - cache.notify: cannot be false while cache.enabled is true',
    );
  }
  const purge = input.purge ?? {};
  return {
    idleTimeoutMs,
    absoluteTimeoutMs,
    touchIntervalMs:
      parseDuration(input.touchInterval) ?? Math.min(MAX_TOUCH_INTERVAL_MS, Math.floor(idleTimeoutMs / 10)),
    rotationIntervalMs: parseDuration(input.rotationInterval) ?? DEFAULT_ROTATION_INTERVAL_MS,
    // The default grace must not outlast a short idle timeout.
    rotationGraceMs:
      parseDuration(input.rotationGrace) ?? Math.min(DEFAULT_ROTATION_GRACE_MS, Math.floor(idleTimeoutMs / 2)),
    transport: input.transport ?? 'cookie',
    cookie: resolvedCookie,
    bearerRotationHeader: (input.bearerRotationHeader ?? 'session-token').toLowerCase(),
    maxDataBytes: input.maxDataBytes ?? 65_536,
    purge: {
      enabled: purge.enabled ?? true,
      cron: purge.cron ?? DEFAULT_PURGE_CRON,
      batchSize: purge.batchSize ?? DEFAULT_PURGE_BATCH_SIZE,
      dutyCycle: purge.dutyCycle ?? DEFAULT_PURGE_DUTY_CYCLE,
      auditRetentionMs:
        purge.auditRetention === false ? null : (parseDuration(purge.auditRetention) ?? DEFAULT_AUDIT_RETENTION_MS),
    },
    admin: resolveAdminOptions(input.admin),
    cache: {
      enabled: input.cache?.enabled ?? false,
      maxEntries: input.cache?.maxEntries ?? DEFAULT_CACHE_MAX_ENTRIES,
      ttlMs: parseDuration(input.cache?.ttl) ?? DEFAULT_CACHE_TTL_MS,
      notify: input.cache?.notify ?? input.cache?.enabled ?? false,
    },
    metrics: resolveMetricsOptions(input.metrics),
    ...security,
  };
}
