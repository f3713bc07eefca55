import { csrfTokenFor } from './csrf/csrf-token.js';
import { freezeData } from './session-data.js';
import type { DefaultSessionData, SessionDataView } from './session-data.types.js';
import type { SessionLookup } from './store/session-row.js';

/**
 * What handlers see of the request's session (`@CurrentSession()`). Shows no token material.
 * `TData` types `data`: annotate the parameter (`@CurrentSession() session: ActiveSession<Cart>`),
 * or declare the app's `SessionData` once and leave it out. A user's session: guarded and
 * `@OptionalSession()` routes never see a guest. On a `@GuestSession()` route the session may be
 * an ActiveGuestSession instead: take it as `ActiveSession | ActiveGuestSession` and tell them
 * apart by `isGuest`.
 */
export interface ActiveSession<TData extends object = DefaultSessionData> {
  readonly id: string;
  readonly userId: string;
  /** false: a logged-in user's session (see ActiveGuestSession). */
  readonly isGuest: false;
  /** The lifetime profile chosen at login: 'default', or a name from the `lifetimes` option. */
  readonly lifetime: string;
  /** Frozen: only `SessionService.patch()` changes it. */
  readonly data: SessionDataView<TData>;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly authenticatedAt: Date;
  /** The earlier of the idle and the absolute expiry. */
  readonly expiresAt: Date;
  readonly idleExpiresAt: Date;
  readonly absoluteExpiresAt: Date;
  readonly transport: 'cookie' | 'bearer';
  /**
   * An impersonation session (`SessionService.impersonate`): the user id of the admin acting as
   * `userId`. Absent on every other session.
   */
  readonly impersonator?: string;
  /**
   * true: the session waits for its second factor (`create(..., { pendingSecondFactor: true })`);
   * only `@SecondFactorRoute()` handlers see it. Absent on every other session.
   */
  readonly secondFactorPending?: true;
  /**
   * Cookie sessions: the CSRF token that unsafe requests must send in the `x-csrf-token`
   * header (also in the non-HttpOnly `__Host-csrf` cookie). Changes when the token rotates.
   */
  readonly csrfToken?: string;
}

/**
 * A visitor who has not logged in (`guests.enabled`), seen only on `@GuestSession()` routes:
 * no user, lifetime 'guest'. At login its data moves into the user's new session.
 */
export interface ActiveGuestSession<TData extends object = DefaultSessionData> extends Omit<
  ActiveSession<TData>,
  'userId' | 'isGuest' | 'lifetime'
> {
  readonly userId: null;
  readonly isGuest: true;
  readonly lifetime: 'guest';
}

/**
 * The session handlers get. A class for one reason: the CSRF token, an HMAC of the session
 * token, is worked out when first read, because only unsafe requests (CsrfGuard) and login
 * responses need it, not every GET. The session token it comes from, and what the module
 * keeps about the check (the token's digest, the database clock, which token generation matched),
 * are private fields: not enumerable, not in JSON or util.inspect output, not writable by a
 * handler or a middleware.
 */
export class RequestSession implements Omit<ActiveSession, 'userId' | 'isGuest'> {
  readonly id: string;
  readonly userId: string | null;
  readonly isGuest: boolean;
  readonly lifetime: string;
  readonly data: SessionDataView;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly authenticatedAt: Date;
  readonly expiresAt: Date;
  readonly idleExpiresAt: Date;
  readonly absoluteExpiresAt: Date;
  // Declared, not initialised: an own property only on impersonation sessions.
  declare readonly impersonator?: string;
  declare readonly secondFactorPending?: true;
  readonly #token: string | undefined;
  #csrfToken: string | undefined;
  readonly #internals: SessionInternals;

  /**
   * `token`: the one the client holds now, `tokenDigest` its SHA-256 (tokenDigest()); `row`: the
   * session as checked, at `checkedAt` on the database clock (epoch ms; a cached row's `dbNow`
   * is the time it was read, not this request's).
   */
  constructor(
    row: SessionLookup,
    readonly transport: 'cookie' | 'bearer',
    token: string,
    tokenDigest: string,
    checkedAt = row.dbNow.getTime(),
  ) {
    this.id = row.id;
    this.userId = row.userId;
    this.isGuest = row.userId === null;
    this.lifetime = row.lifetime;
    // The row holds whatever JSON was stored; TData is the app's word for it (as with any JSON it reads).
    this.data = freezeData(row.data) as SessionDataView;
    // Copies: a Date is mutable (setTime), and a cached row's Dates are shared by every request
    // it serves and decide its expiry, so a handler must never hold the row's own.
    this.createdAt = new Date(row.createdAt.getTime());
    this.lastSeenAt = new Date(row.lastSeenAt.getTime());
    this.authenticatedAt = new Date(row.authenticatedAt.getTime());
    const idle = row.idleExpiresAt.getTime();
    const absolute = row.absoluteExpiresAt.getTime();
    this.expiresAt = new Date(Math.min(idle, absolute));
    this.idleExpiresAt = new Date(idle);
    this.absoluteExpiresAt = new Date(absolute);
    if (row.impersonatorId) this.impersonator = row.impersonatorId;
    if (row.secondFactorPending) this.secondFactorPending = true;
    this.#token = transport === 'cookie' ? token : undefined;
    this.#internals = { tokenDigest, checkedAt, isCurrentToken: row.isCurrentToken };
  }

  /** What the module keeps about the session that handlers must not see (only the module imports this class). */
  static internalsOf(session: object): SessionInternals | undefined {
    return #internals in session ? session.#internals : undefined;
  }

  get csrfToken(): string | undefined {
    if (this.#csrfToken === undefined && this.#token !== undefined) this.#csrfToken = csrfTokenFor(this.#token);
    return this.#csrfToken;
  }

  /** The public fields and, for a cookie session, the CSRF token (a getter, which JSON would skip). */
  toJSON(): ActiveSession | ActiveGuestSession {
    const fields = { ...this } as ActiveSession | ActiveGuestSession;
    return this.csrfToken === undefined ? fields : { ...fields, csrfToken: this.csrfToken };
  }

  /** As handlers see it: a user's session or, with `isGuest`, a guest's. */
  asSession(): ActiveSession | ActiveGuestSession {
    return this as unknown as ActiveSession | ActiveGuestSession;
  }
}

/**
 * Why a request has no usable session; sent as `reason` in the 401 body (429 for
 * 'too_many_invalid_tokens'; 'reauth_required' comes from @RequireFreshSession;
 * 'second_factor_required': a pending session outside a `@SecondFactorRoute()`).
 */
export type SessionFailureReason =
  | 'missing'
  | 'invalid'
  | 'idle_timeout'
  | 'absolute_timeout'
  | 'revoked'
  | 'too_many_invalid_tokens'
  | 'reauth_required'
  | 'second_factor_required';

/** What the module keeps about a request's session that handlers must not see. */
interface SessionInternals {
  /** SHA-256 of the token, one latin1 character per byte (tokenDigest()). */
  readonly tokenDigest: string;
  /** The database clock (epoch ms) when the session was checked: freshness is judged on it. */
  readonly checkedAt: number;
  /** false when the request came with the rotated-out token (inside the grace window). */
  readonly isCurrentToken: boolean;
}

/**
 * The session attached to each request (null: looked at, none). Kept beside the request, not
 * on it: nothing another middleware writes onto the request (`req.session`) reaches it, and it
 * is not copied, inherited, serialised or logged with the request.
 */
const attached = new WeakMap<object, ActiveSession | null>();

/** Whether the session guard has already looked at this request (with or without a session). */
export function isSessionResolved(request: object): boolean {
  return attached.has(request);
}

export function attachSession(request: object, session: ActiveSession | ActiveGuestSession | null): void {
  // Stored as ActiveSession: only @GuestSession() routes get a guest, and they are told so.
  attached.set(request, session as ActiveSession | null);
}

/** The session the guard (or `SessionService.create`) attached to this request, if any. */
export function sessionOf(request: object): ActiveSession | undefined {
  return attached.get(request) ?? undefined;
}

export function internalsOf(session: object): SessionInternals | undefined {
  return RequestSession.internalsOf(session);
}
