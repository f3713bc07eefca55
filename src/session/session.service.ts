import { BadRequestException, Inject, Injectable, NotFoundException, PayloadTooLargeException } from '@nestjs/common';
import { attachSession, sessionOf, type ActiveSession, type ActiveGuestSession } from './active-session.js';
import type { RevokeReason } from './audit/audit-event.js';
import { GuestCreationLimiter } from './guest/guest-creation.limiter.js';
import {
  SessionImpersonation,
  type ImpersonateInput,
  type IssuedSession,
} from './impersonation/session-impersonation.js';
import { mayCreateGuest } from './request-state.js';
import { secondFactorRequired } from './second-factor/second-factor.errors.js';
import { SessionSecondFactor, type SecondFactorCheck } from './second-factor/session-second-factor.js';
import { assertStorableData } from './session-data.js';
import type { DefaultSessionData, SessionDataPatch } from './session-data.types.js';
import { requireSession, SessionIssuer, type CreatedSession, type CreateSessionInput } from './session-issuer.js';
import { auditContext, SessionValidator } from './session-validator.js';
import { SESSION_OPTIONS, SESSION_TRANSPORT } from './session.constants.js';
import type { ResolvedSessionOptions } from './session.options.js';
import { isDataException } from './store/pg-errors.js';
import type { SessionSummary } from './store/session-row.js';
import { SessionStore } from './store/session.store.js';
import { setHeader, type HttpRequestLike, type HttpResponseLike } from './transport/http.js';
import type { SessionTransport } from './transport/session-transport.js';

export type { CreatedSession, CreateSessionInput } from './session-issuer.js';

/**
 * The session lifecycle: login, logout, rotation, revocation, device list and data. New
 * sessions and tokens are issued by SessionIssuer (session-issuer.ts).
 */
@Injectable()
export class SessionService {
  private readonly issuer: SessionIssuer;
  // A property, not a constructor parameter: the constructor stays as subclasses and tests call it.
  @Inject(GuestCreationLimiter) private readonly guestLimiter!: GuestCreationLimiter;
  @Inject(SessionImpersonation) private readonly impersonation!: SessionImpersonation;
  @Inject(SessionSecondFactor) private readonly secondFactor!: SessionSecondFactor;

  constructor(
    private readonly store: SessionStore,
    validator: SessionValidator,
    @Inject(SESSION_TRANSPORT) private readonly transport: SessionTransport,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {
    this.issuer = new SessionIssuer(store, validator, transport, options);
  }

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
    return this.issuer.create(request, response, input);
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
    const session = requireSession(request);
    await this.store.deleteWithEvent(session.id, 'logout', auditContext(request, session.userId ?? undefined));
    this.transport.clear(response);
    if (this.transport.kind === 'cookie') setHeader(response, 'Clear-Site-Data', '"cookies"');
    attachSession(request, null);
  }

  /** Issues a new token now (e.g. after a privilege change); id and absolute expiry stay. */
  async rotate(request: HttpRequestLike, response: HttpResponseLike): Promise<ActiveSession> {
    return this.issuer.rotate(request, response, 'manual');
  }

  /**
   * Call after the user proved who they are again (password, passkey, ...): the session
   * counts as freshly authenticated for `@RequireFreshSession`, and gets a new token (and
   * so a new CSRF token), as after a login.
   */
  async reauthenticate(request: HttpRequestLike, response: HttpResponseLike): Promise<ActiveSession> {
    return this.issuer.rotate(request, response, 'reauthenticated');
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
    const guest = await this.issuer.startGuest(request, response, patch);
    return guest.data as SessionDataPatch<TData>;
  }
}
