import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  registerDecorator,
  type ValidationArguments,
} from 'class-validator';
import { parseDuration, type Duration } from '../duration.js';

/** CSRF protection of cookie-borne sessions (bearer sessions need none). */
export interface SessionCsrfOptions {
  /** Default true. Turning it off leaves cookie sessions open to cross-site request forgery. */
  enabled?: boolean;
  /** Request header that must carry `session.csrfToken` on unsafe methods. Default 'x-csrf-token'. */
  headerName?: string;
  /**
   * Non-HttpOnly cookie holding the CSRF token for single-page apps, written and cleared with the
   * session cookie. Default '__Host-csrf' (or '__Secure-csrf' / 'csrf', following the session
   * cookie's prefix); `false` sends no such cookie (take `session.csrfToken` from a response body).
   */
  cookieName?: string | false;
  /**
   * Origins (`scheme://host[:port]`) allowed to send unsafe requests, compared exactly.
   * Default: only the request's own origin, as Host and the framework's protocol state it.
   */
  allowedOrigins?: string[];
}

/** Flood and guess detection for unknown or malformed tokens, per client address. */
export interface SessionFloodOptions {
  /** Unknown or malformed tokens a source may present per window before it gets 429. Default 100; 0 never blocks. */
  limit?: number;
  /** Length of the counting window, also the period of the aggregated audit rows. Default '1m'. */
  window?: Duration;
  /** Sources tracked at once (least recently seen are dropped first). Default 10000. */
  maxSources?: number;
}

export type SessionLimitPolicy = 'evict-oldest' | 'reject';

/** Per-user cap on live sessions (off unless set). */
export interface SessionLimitOptions {
  maxSessionsPerUser: number;
  /** 'evict-oldest' (default) revokes the oldest sessions; 'reject' refuses the login with 409. */
  policy?: SessionLimitPolicy;
}

/** Step-up: how recent the last authentication must be for `@RequireFreshSession()`. */
export interface SessionStepUpOptions {
  /** Default for `@RequireFreshSession()` without an argument. Default '5m'. */
  maxAge?: Duration;
}

/** What to do when a session shows up from another IP address or user agent. */
export interface SessionClientBindingOptions {
  /** Record `ip_changed` / `ua_changed` (once per change). Default true. */
  audit?: boolean;
  /** Revoke the session when its user agent changes (browser updates change it too). Default false. */
  rejectOnUserAgentChange?: boolean;
}

export interface ResolvedSecurityOptions {
  csrf: { enabled: boolean; headerName: string; cookieName: string | false; allowedOrigins: string[] | undefined };
  flood: { limit: number; windowMs: number; maxSources: number };
  sessionLimit: { maxSessionsPerUser: number; policy: SessionLimitPolicy } | undefined;
  stepUp: { maxAgeMs: number };
  clientBinding: { audit: boolean; rejectOnUserAgentChange: boolean };
}

export const DEFAULT_FLOOD_LIMIT = 100;
export const DEFAULT_FLOOD_WINDOW_MS = 60_000;
export const DEFAULT_FLOOD_MAX_SOURCES = 10_000;
export const DEFAULT_STEP_UP_MAX_AGE_MS = 5 * 60_000;

// ---- class-validator schemas (nested under SessionOptionsSchema) --------------------------

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/;

function IsPositiveDuration() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isPositiveDuration',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown) => (parseDuration(value) ?? 0) > 0,
        defaultMessage: (args?: ValidationArguments) =>
          `must be a positive duration (milliseconds, or a string like '30s', '5m'); got ${JSON.stringify(args?.value)}`,
      },
    });
}

function IsCookieNameOrFalse() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isCookieNameOrFalse',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown) => value === false || (typeof value === 'string' && COOKIE_NAME.test(value)),
        defaultMessage: () => 'must be a cookie token of 1..64 characters, or false',
      },
    });
}

/** `scheme://host[:port]` exactly as browsers send it in Origin: lower case, no path, no trailing slash. */
export function isSerializedOrigin(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

function IsOriginList() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isOriginList',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown) => Array.isArray(value) && value.length > 0 && value.every(isSerializedOrigin),
        defaultMessage: (args?: ValidationArguments) =>
          `must be a non-empty list of origins like 'https://app.example.com' (scheme, host, optional port; ` +
          `no path or trailing slash); got ${JSON.stringify(args?.value)}`,
      },
    });
}

export class CsrfOptionsSchema implements SessionCsrfOptions {
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  @IsOptional()
  @IsString()
  @Matches(/^[a-z][a-z0-9-]{0,63}$/i, { message: 'must be an HTTP header name' })
  headerName?: string;

  @IsOptional()
  @IsCookieNameOrFalse()
  cookieName?: string | false;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @IsOriginList()
  allowedOrigins?: string[];
}

export class FloodOptionsSchema implements SessionFloodOptions {
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  limit?: number;

  @IsOptional()
  @IsPositiveDuration()
  window?: Duration;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  maxSources?: number;
}

export class SessionLimitOptionsSchema implements SessionLimitOptions {
  @IsInt()
  @Min(1)
  @Max(10_000)
  maxSessionsPerUser: number;

  @IsOptional()
  @IsIn(['evict-oldest', 'reject'])
  policy?: SessionLimitPolicy;
}

export class StepUpOptionsSchema implements SessionStepUpOptions {
  @IsOptional()
  @IsPositiveDuration()
  maxAge?: Duration;
}

export class ClientBindingOptionsSchema implements SessionClientBindingOptions {
  @IsOptional()
  @IsBoolean()
  audit?: boolean;

  @IsOptional()
  @IsBoolean()
  rejectOnUserAgentChange?: boolean;
}

/** The CSRF cookie follows the session cookie's prefix, so it gets the same browser-enforced guarantees. */
function defaultCsrfCookieName(sessionCookieName: string): string {
  const prefix = /^__(Host|Secure)-/.exec(sessionCookieName)?.[0] ?? '';
  return `${prefix}csrf`;
}

/** Cookie prefix rules for the CSRF cookie, which shares the session cookie's attributes. */
export function csrfCookieProblem(
  name: string | false,
  sessionCookie: { secure: boolean; domain?: string; path: string; name: string },
): string | undefined {
  if (name === false) return undefined;
  if (name === sessionCookie.name) return `csrf.cookieName must differ from the session cookie's name`;
  if (
    name.startsWith('__Host-') &&
    (!sessionCookie.secure || sessionCookie.domain !== undefined || sessionCookie.path !== '/')
  ) {
    return `csrf.cookieName '${name}' needs a secure session cookie without domain and with path '/'`;
  }
  if (name.startsWith('__Secure-') && !sessionCookie.secure)
    return `csrf.cookieName '${name}' needs cookie.secure: true`;
  if (/^__(host|secure)-/i.test(name) && !/^__(Host|Secure)-/.test(name)) {
    return `csrf.cookieName '${name}' looks like a cookie prefix but is not spelled '__Host-' or '__Secure-'`;
  }
  return undefined;
}

export interface SecurityOptionsInput {
  csrf?: SessionCsrfOptions;
  flood?: SessionFloodOptions;
  sessionLimit?: SessionLimitOptions;
  stepUp?: SessionStepUpOptions;
  clientBinding?: SessionClientBindingOptions;
}

/** Fills in defaults of already validated security options. */
export function resolveSecurityOptions(
  input: SecurityOptionsInput,
  sessionCookieName: string,
): ResolvedSecurityOptions {
  const csrf = input.csrf ?? {};
  const flood = input.flood ?? {};
  return {
    csrf: {
      enabled: csrf.enabled ?? true,
      headerName: (csrf.headerName ?? 'x-csrf-token').toLowerCase(),
      cookieName: csrf.cookieName ?? defaultCsrfCookieName(sessionCookieName),
      allowedOrigins: csrf.allowedOrigins,
    },
    flood: {
      limit: flood.limit ?? DEFAULT_FLOOD_LIMIT,
      windowMs: parseDuration(flood.window) ?? DEFAULT_FLOOD_WINDOW_MS,
      maxSources: flood.maxSources ?? DEFAULT_FLOOD_MAX_SOURCES,
    },
    sessionLimit: input.sessionLimit && {
      maxSessionsPerUser: input.sessionLimit.maxSessionsPerUser,
      policy: input.sessionLimit.policy ?? 'evict-oldest',
    },
    stepUp: { maxAgeMs: parseDuration(input.stepUp?.maxAge) ?? DEFAULT_STEP_UP_MAX_AGE_MS },
    clientBinding: {
      audit: input.clientBinding?.audit ?? true,
      rejectOnUserAgentChange: input.clientBinding?.rejectOnUserAgentChange ?? false,
    },
  };
}
