import { BadRequestException, Inject, Injectable, NotFoundException, PayloadTooLargeException } from '@nestjs/common';
import {
  attachSession,
  internalsOf,
  sessionOf,
  type ActiveSession,
  type ActiveGuestSession,
} from './active-session.js';
import type { RevokeReason } from './audit/audit-event.js';
import { GuestCreationLimiter } from './guest/guest-creation.limiter.js';
import {
  SessionImpersonation,
  type ImpersonateInput,
  type IssuedSession,
} from './impersonation/session-impersonation.js';
import { chosenProfile } from './lifetime/lifetime-profiles.js';
import { TokenReuseDetector } from './security/token-reuse.detector.js';
import { profileOf, type LifetimeProfile } from './lifetime/lifetime.options.js';
import { mayCreateGuest } from './request-state.js';
import { SessionDataTooLargeError } from './encryption/data-at-rest.js';
import { secondFactorRequired, sessionLimitReached } from './second-factor/second-factor.errors.js';
import { SessionSecondFactor, type SecondFactorCheck } from './second-factor/session-second-factor.js';
import { assertStorableData } from './session-data.js';
import type { DefaultSessionData, SessionDataPatch } from './session-data.types.js';
import { auditContext, SessionValidator } from './session-validator.js';
import { SESSION_OPTIONS, SESSION_TRANSPORT } from './session.constants.js';
import type { ResolvedSessionOptions } from './session.options.js';
import { isDataException } from './store/pg-errors.js';
import type { SessionSummary } from './store/session-row.js';
import type { CreateSessionParams } from './store/session-store.types.js';
import { SessionLimitExceededError, SessionStore } from './store/session.store.js';
import { digestBytes, generateToken, hashToken, tokenDigest } from './token/session-token.js';
import { DroppedCookieWarning } from './transport/cookie.transport.js';
import { setHeader, type HttpRequestLike, type HttpResponseLike } from './transport/http.js';
import type { SessionTransport } from './transport/session-transport.js';

export interface CreateSessionInput<TData extends object = DefaultSessionData> {
  userId: string;
  /** The new session's first data (typed like `patch()`'s argument). */
  data?: SessionDataPatch<TData>;
  /** A profile of the `lifetimes` option (e.g. 'remember'); default: 'default' (idleTimeout, absoluteTimeout). */
  lifetime?: string;
  /**
   * When the request carries a live guest session's token, how its data joins `data` in the new
   * session. Default: the guest's keys, then `data`'s (`{ ...guestData, ...data }`).
   */
  mergeGuestData?: (guestData: Record<string, unknown>, data: Record<string, unknown>) => Record<string, unknown>;
  /**
   * The password was right but a second factor is still due: the session passes only
   * `@SecondFactorRoute()` routes (401 'second_factor_required' elsewhere), lives
   * `secondFactor.pendingTimeout`, and becomes a full one with `completeSecondFactor()`.
   */
  pendingSecondFactor?: boolean;
}

/** What `create()` returns; safe to send as the login response body. */
export interface CreatedSession {
  sessionId: string;
  userId: string;
  createdAt: Date;
  expiresAt: Date;
  /** The lifetime profile it was created with. */
  lifetime: string;
  /** Bearer transport only: the client's token. Never present with cookies. */
  token?: string;
  /** Cookie transport only: the CSRF token for the `x-csrf-token` header (also in the `__Host-csrf` cookie). */
  csrfToken?: string;
  /** Created with `pendingSecondFactor`: the client must verify its second factor next. */
  secondFactorRequired?: true;
}

/** The session lifecycle: login, logout, rotation, revocation, device list and data. */
@Injectable()
export class SessionService {
  private readonly droppedCookie = new DroppedCookieWarning();
  /** Built at the first login that carries a token, then kept. */
  private tokenReuse?: TokenReuseDetector;
  // A property, not a constructor parameter: the constructor stays as subclasses and tests call it.
  @Inject(GuestCreationLimiter) private readonly guestLimiter!: GuestCreationLimiter;
  @Inject(SessionImpersonation) private readonly impersonation!: SessionImpersonation;
  @Inject(SessionSecondFactor) private readonly secondFactor!: SessionSecondFactor;

  constructor(
    private readonly store: SessionStore,
    private readonly validator: SessionValidator,
    @Inject(SESSION_TRANSPORT) private readonly transport: SessionTransport,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {}

  /**
   * Starts a session for an authenticated user. The token is always new; a token the
   * request already carried (planted by an attacker, or the user's old one) is revoked in
   * the same statement, so session fixation cannot work. With `sessionLimit`, the user's
   * oldest sessions are revoked (evict-oldest) or the login is refused with 409 (reject).
   */
  async create<TData extends object = DefaultSessionData>(
    request: HttpRequestLike,
    response: HttpResponseLike,
    input: CreateSessionInput<NoInfer<TData>>,
  ): Promise<CreatedSession> {
    if (typeof input?.userId !== 'string' || input.userId.length === 0 || input.userId.length > 255) {
      throw new TypeError('SessionService.create: userId must be a string of 1..255 characters');
    }
    const chosen = chosenProfile(this.options.lifetimes, input.lifetime);
    const pending = input.pendingSecondFactor === true;
    const profile = pending ? pendingProfile(chosen, this.options.secondFactor.pendingTimeoutMs) : chosen;
    assertStorableData(input.data ?? {}, this.options.maxDataBytes);
    const carried = this.transport.read(request);
    const replaces = carried.kind === 'token' ? hashToken(carried.token) : null;
    // A token retired past its grace is theft wherever it comes back, a login included.
    if (replaces)
      await (this.tokenReuse ??= new TokenReuseDetector(this.store, this.options.rotationGraceMs)).retiredTokenReused(
        replaces,
        () => auditContext(request),
      );
    // A guest becoming this user: its data moves into the new session (read under a row lock), and
    // its token is revoked by the insert.
    const carryGuest = this.options.guests.enabled
      ? (guestData: Record<string, unknown>) => {
          const merged = (input.mergeGuestData ?? defaultMerge)(guestData, input.data ?? {});
          assertStorableData(merged, this.options.maxDataBytes);
          return merged;
        }
      : undefined;
    const { session, token } = await this.start(
      request,
      response,
      input.userId,
      input.data ?? {},
      profile,
      replaces,
      carryGuest,
      pending,
    );
    return {
      sessionId: session.id,
      userId: input.userId,
      createdAt: session.createdAt,
      expiresAt: session.expiresAt,
      lifetime: profile.name,
      ...(this.transport.kind === 'bearer' ? { token } : { csrfToken: session.csrfToken }),
      ...(pending ? { secondFactorRequired: true as const } : {}),
    };
  }

  /**
   * Inserts the session (a guest's when `userId` is null), sets the cookie for the profile's
   * absolute timeout, and attaches the session to the request.
   */
  private async start(
    request: HttpRequestLike,
    response: HttpResponseLike,
    userId: string | null,
    data: Record<string, unknown>,
    profile: LifetimeProfile,
    replaces: Buffer | null,
    carryGuest?: CreateSessionParams['carryGuest'],
    secondFactorPending = false,
  ): Promise<{ session: ActiveSession; token: string }> {
    const token = generateToken();
    const digest = tokenDigest(token);
    const context = auditContext(request);
    const row = await this.store
      .create({
        tokenHash: digestBytes(digest),
        replacesTokenHash: replaces,
        userId,
        data,
        lifetime: profile.name,
        idleTimeoutMs: profile.idleTimeoutMs,
        absoluteTimeoutMs: profile.absoluteTimeoutMs,
        ip: context.ip ?? null,
        userAgent: context.userAgent ?? null,
        limit: this.options.sessionLimit,
        carryGuest,
        maxDataBytes: userId === null ? this.options.guests.maxDataBytes : this.options.maxDataBytes,
        secondFactorPending,
        maxPendingPerUser: this.options.secondFactor.maxPendingPerUser,
      })
      .catch((error: unknown) => {
        if (error instanceof SessionDataTooLargeError) throw new PayloadTooLargeException(error.message);
        if (error instanceof SessionLimitExceededError) throw sessionLimitReached(error.limit);
        throw error;
      });
    this.transport.write(response, token, row.absoluteExpiresAt.getTime() - row.dbNow.getTime());
    if (this.transport.kind === 'cookie') this.droppedCookie.check(request, this.options.cookie);
    // The token goes back beside the session, never onto it: handlers may serialise the session.
    return { session: this.validator.attach(request, row, token, digest), token };
  }

  /**
   * Support access (`impersonation.enabled`): from the request's own, real session, starts a
   * session that acts as `userId` (the client's token is replaced by its token), audited
   * `impersonation_started` with the admin as actor and the `reason`. It lives at most
   * `impersonation.maxDuration`, never past the admin's session; every audit row it causes names
   * the admin as actor; it cannot impersonate (403) nor pass `@RealUserOnly()` routes or the
   * admin API. Who may call it is the app's decision: check the caller's role first.
   */
  impersonate(request: HttpRequestLike, response: HttpResponseLike, input: ImpersonateInput): Promise<IssuedSession> {
    return this.impersonation.start(request, response, input);
  }

  /**
   * Ends the request's impersonation session (`impersonation_ended`) and returns the admin to
   * their own session under a new token, without a login; 401 'revoked' when that session has
   * ended meanwhile (the admin logs in again). 400 on a session that is no impersonation.
   */
  stopImpersonating(request: HttpRequestLike, response: HttpResponseLike): Promise<IssuedSession> {
    return this.impersonation.stop(request, response);
  }

  /**
   * On a `@SecondFactorRoute()` with a pending session: takes one of its `secondFactor.maxAttempts`
   * attempts, then asks `check` (the app verifies the code for `session.userId`). True: as
   * `completeSecondFactor()`. Otherwise 401 'second_factor_failed' with `attemptsLeft`, audited
   * `second_factor_failed`; the last attempt revokes the session (401 'revoked'). Attempts are
   * taken before checking, so concurrent guesses cannot outrun the limit.
   */
  verifySecondFactor(
    request: HttpRequestLike,
    response: HttpResponseLike,
    check: SecondFactorCheck,
  ): Promise<IssuedSession> {
    return this.secondFactor.verify(request, response, check);
  }

  /**
   * The app verified the pending session's second factor: it becomes a full session under a new
   * token (the pending one stops working at once, no grace), authenticated now for
   * `@RequireFreshSession()`, with its lifetime profile's timeouts from now; audited
   * `second_factor_completed`. 400 'second_factor_not_pending' on a full session; 401 'revoked'
   * when it is no longer live or used up its attempts.
   */
  completeSecondFactor(request: HttpRequestLike, response: HttpResponseLike): Promise<IssuedSession> {
    return this.secondFactor.complete(request, response);
  }

  /**
   * The app checked a second factor and it was wrong: counts one attempt (audited
   * `second_factor_failed`) and always throws 401 'second_factor_failed' with `attemptsLeft`, or
   * 'revoked' when that was the last (the cookie is cleared). Check and report one code at a time per session, or use
   * `verifySecondFactor()`, which cannot be outrun by concurrent guesses.
   */
  failSecondFactor(request: HttpRequestLike, response: HttpResponseLike): Promise<never> {
    return this.secondFactor.fail(request, response);
  }

  /** The session the guard attached to this request, if any; `TData` types its data, as for `ActiveSession`. */
  current<TData extends object = DefaultSessionData>(request: object): ActiveSession<TData> | undefined {
    return sessionOf(request) as ActiveSession<TData> | undefined;
  }

  /** Logout: the row is deleted server-side, the cookie cleared, and the browser told to drop cookies. */
  async destroy(request: HttpRequestLike, response: HttpResponseLike): Promise<void> {
    const session = this.requireSession(request);
    await this.store.deleteWithEvent(session.id, 'logout', auditContext(request, session.userId ?? undefined));
    this.transport.clear(response);
    if (this.transport.kind === 'cookie') setHeader(response, 'Clear-Site-Data', '"cookies"');
    attachSession(request, null);
  }

  /** Issues a new token now (e.g. after a privilege change); id and absolute expiry stay. */
  async rotate(request: HttpRequestLike, response: HttpResponseLike): Promise<ActiveSession> {
    return this.rotateWith(request, response, 'manual');
  }

  /**
   * Call after the user proved who they are again (password, passkey, ...): the session
   * counts as freshly authenticated for `@RequireFreshSession`, and gets a new token (and
   * so a new CSRF token), as after a login.
   */
  async reauthenticate(request: HttpRequestLike, response: HttpResponseLike): Promise<ActiveSession> {
    return this.rotateWith(request, response, 'reauthenticated');
  }

  private async rotateWith(
    request: HttpRequestLike,
    response: HttpResponseLike,
    reason: 'manual' | 'reauthenticated',
  ): Promise<ActiveSession> {
    const session = this.requireSession(request);
    // A step-up is no second factor: a pending session becomes full only by completeSecondFactor().
    if (session.secondFactorPending) throw secondFactorRequired();
    const internals = internalsOf(session);
    if (!internals)
      throw new Error(
        `SessionService.${reason === 'manual' ? 'rotate' : 'reauthenticate'}: the session was not attached by this module`,
      );
    const rotated = await this.validator.rotateToken(request, response, session, internals.tokenDigest, reason);
    if (!rotated) throw new NotFoundException('session was rotated or revoked concurrently');
    return this.validator.attach(request, rotated.row, rotated.token, rotated.digest);
  }

  /**
   * Revokes one session. With `onlyUserId`, a session of anyone else counts as not found.
   * The audit row's actor is `actorId`, else the session's owner; reason 'admin' requires `actorId`.
   */
  async revoke(
    sessionId: string,
    options: { reason?: RevokeReason; actorId?: string; request?: HttpRequestLike; onlyUserId?: string } = {},
  ): Promise<boolean> {
    const context = options.request
      ? auditContext(options.request, options.actorId)
      : { actorId: options.actorId ?? null };
    return this.store.revoke(sessionId, options.reason ?? 'user', context, { onlyUserId: options.onlyUserId });
  }

  /** Revokes every session of a user, optionally except one (e.g. the current one). Returns how many. Actor as in revoke(). */
  async revokeAll(
    userId: string,
    options: {
      except?: string | ActiveSession;
      reason?: RevokeReason;
      actorId?: string;
      request?: HttpRequestLike;
    } = {},
  ): Promise<number> {
    const exceptId = typeof options.except === 'string' ? options.except : options.except?.id;
    const context = options.request
      ? auditContext(options.request, options.actorId)
      : { actorId: options.actorId ?? null };
    return this.store.revokeAllForUser(
      userId,
      options.reason ?? (exceptId ? 'revoke_others' : 'user'),
      context,
      exceptId,
    );
  }

  /** A user's live sessions (devices), newest first, flagging the current one. Never tokens. */
  async list(userId: string, current?: ActiveSession | string): Promise<SessionSummary[]> {
    return this.store.listForUser(userId, typeof current === 'string' ? current : current?.id);
  }

  /**
   * Merges the given keys into the session's data in one statement (`data || patch`), so
   * concurrent patches of different keys never lose each other. Returns the merged data.
   * `TData` comes from the session's type (`ActiveSession<TData>`) or is given
   * (`patch<Cart>(session, ...)`); keys and value types are checked against it.
   */
  async patch<TData extends object = DefaultSessionData>(
    session: ActiveSession<TData> | ActiveSession | ActiveGuestSession<TData> | ActiveGuestSession,
    patch: NoInfer<SessionDataPatch<TData>>,
  ): Promise<SessionDataPatch<TData>> {
    // Its data is the app's trust in a login that is not finished: nothing writes it before.
    if (session.secondFactorPending) throw secondFactorRequired();
    const maxDataBytes = session.isGuest ? this.options.guests.maxDataBytes : this.options.maxDataBytes;
    assertStorableData(patch, maxDataBytes);
    const result = await this.store.patchData(session.id, patch, maxDataBytes).catch((error: unknown) => {
      if (isDataException(error)) throw new BadRequestException('session data rejected by the database');
      throw error;
    });
    if (result.ok) return result.data as SessionDataPatch<TData>;
    if (result.reason === 'too_large')
      throw new PayloadTooLargeException(`session data would exceed the ${maxDataBytes}-byte limit`);
    throw new NotFoundException('session not found');
  }

  /**
   * patch() for the request's own session, user or guest. On a `@GuestSession()` route without
   * one (and `guests.enabled`), starts a guest session holding `patch`: the only way a guest
   * session is created, so reads never create rows. Each source may start `guests.createLimit`
   * per `guests.createWindow`, then gets 429. Returns the merged data; `current(request)` then
   * holds the session (its `csrfToken` for the next write).
   */
  async patchCurrent<TData extends object = DefaultSessionData>(
    request: HttpRequestLike,
    response: HttpResponseLike,
    patch: SessionDataPatch<TData>,
  ): Promise<SessionDataPatch<TData>> {
    const session = sessionOf(request);
    if (session) return this.patch<TData>(session, patch);
    if (!mayCreateGuest(request))
      throw new Error(
        'SessionService.patchCurrent: no session on this request, and only a @GuestSession() route starts one',
      );
    if (!this.options.guests.enabled)
      throw new Error('SessionService.patchCurrent: cannot start a guest session: guests.enabled is false');
    assertStorableData(patch, this.options.guests.maxDataBytes);
    this.guestLimiter.acquireOrRefuse(request, response);
    const carried = this.transport.read(request);
    const replaces = carried.kind === 'token' ? hashToken(carried.token) : null;
    const guest = await this.start(
      request,
      response,
      null,
      patch,
      profileOf(this.options.lifetimes, 'guest'),
      replaces,
    );
    return guest.session.data as SessionDataPatch<TData>;
  }

  private requireSession(request: object): ActiveSession {
    const session = sessionOf(request);
    if (!session) throw new Error('No session on this request: call it from a route the SessionGuard protects');
    return session;
  }
}

/** The documented rule: the guest's keys are carried, the login's own `data` wins a clash. */
function defaultMerge(guestData: Record<string, unknown>, data: Record<string, unknown>): Record<string, unknown> {
  return { ...guestData, ...data };
}

/** A pending session lives its profile's timeouts, but never longer than `secondFactor.pendingTimeout`. */
function pendingProfile(profile: LifetimeProfile, pendingTimeoutMs: number): LifetimeProfile {
  return {
    name: profile.name,
    idleTimeoutMs: Math.min(profile.idleTimeoutMs, pendingTimeoutMs),
    absoluteTimeoutMs: Math.min(profile.absoluteTimeoutMs, pendingTimeoutMs),
  };
}
