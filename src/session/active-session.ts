import { csrfTokenFor } from './csrf/csrf-token.js';
import { freezeData } from './session-data.js';
import type { SessionRow } from './store/session-row.js';

/** What handlers see of the request's session (`@CurrentSession()`). Holds no token material. */
export interface ActiveSession {
  readonly id: string;
  readonly userId: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly authenticatedAt: Date;
  /** The earlier of the idle and the absolute expiry. */
  readonly expiresAt: Date;
  readonly idleExpiresAt: Date;
  readonly absoluteExpiresAt: Date;
  readonly transport: 'cookie' | 'bearer';
  /**
   * Cookie sessions: the CSRF token that unsafe requests must send in the `x-csrf-token`
   * header (also in the non-HttpOnly `__Host-csrf` cookie). Changes when the token rotates.
   */
  readonly csrfToken?: string;
}

/**
 * The session handlers get. A class for one reason: the CSRF token, an HMAC of the session
 * token, is worked out when first read, because only unsafe requests (CsrfGuard) and login
 * responses need it, not every GET. The session token it comes from is a private field: not
 * enumerable, not in JSON or util.inspect output.
 */
export class RequestSession implements ActiveSession {
  readonly id: string;
  readonly userId: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly authenticatedAt: Date;
  readonly expiresAt: Date;
  readonly idleExpiresAt: Date;
  readonly absoluteExpiresAt: Date;
  readonly #token: string | undefined;
  #csrfToken: string | undefined;

  /** `token`: the session token the client holds now; only cookie sessions have a CSRF token. */
  constructor(row: SessionRow, readonly transport: 'cookie' | 'bearer', token: string) {
    this.id = row.id;
    this.userId = row.userId;
    this.data = freezeData(row.data);
    this.createdAt = row.createdAt;
    this.lastSeenAt = row.lastSeenAt;
    this.authenticatedAt = row.authenticatedAt;
    this.expiresAt = row.idleExpiresAt < row.absoluteExpiresAt ? row.idleExpiresAt : row.absoluteExpiresAt;
    this.idleExpiresAt = row.idleExpiresAt;
    this.absoluteExpiresAt = row.absoluteExpiresAt;
    this.#token = transport === 'cookie' ? token : undefined;
  }

  get csrfToken(): string | undefined {
    if (this.#csrfToken === undefined && this.#token !== undefined) this.#csrfToken = csrfTokenFor(this.#token);
    return this.#csrfToken;
  }

  /** The public fields and, for a cookie session, the CSRF token (a getter, which JSON would skip). */
  toJSON(): ActiveSession {
    return this.csrfToken === undefined ? { ...this } : { ...this, csrfToken: this.csrfToken };
  }
}

/**
 * Why a request has no usable session; sent as `reason` in the 401 body (429 for
 * 'too_many_invalid_tokens'; 'reauth_required' comes from @RequireFreshSession).
 */
export type SessionFailureReason =
  | 'missing' | 'invalid' | 'idle_timeout' | 'absolute_timeout' | 'revoked' | 'too_many_invalid_tokens' | 'reauth_required';

/** What the module keeps about a request's session that handlers must not see. */
interface SessionInternals {
  tokenHash: Buffer;
  /** The database clock when the session was checked (freshness is judged on it). */
  dbNow?: Date;
  /** false when the request came with the rotated-out token (inside the grace window). */
  isCurrentToken?: boolean;
}

/** Whether the session guard has already looked at this request (with or without a session). */
export function isSessionResolved(request: object): boolean {
  return sessionsByRequest.has(request);
}

// WeakMaps, not request properties: nothing here can be serialised, logged or spoofed by
// another middleware writing `req.session`.
const sessionsByRequest = new WeakMap<object, ActiveSession | null>();
const internalsBySession = new WeakMap<ActiveSession, SessionInternals>();

export function attachSession(request: object, session: ActiveSession | null, internals?: SessionInternals): void {
  sessionsByRequest.set(request, session);
  if (session && internals) internalsBySession.set(session, internals);
}

/** The session the guard (or `SessionService.create`) attached to this request, if any. */
export function sessionOf(request: object): ActiveSession | undefined {
  return sessionsByRequest.get(request) ?? undefined;
}

export function internalsOf(session: ActiveSession): SessionInternals | undefined {
  return internalsBySession.get(session);
}
