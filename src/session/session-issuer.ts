import { NotFoundException, PayloadTooLargeException } from '@nestjs/common';
import { internalsOf, sessionOf, type ActiveSession } from './active-session.js';
import { SessionDataTooLargeError } from './encryption/data-at-rest.js';
import { chosenProfile } from './lifetime/lifetime-profiles.js';
import { profileOf, type LifetimeProfile } from './lifetime/lifetime.options.js';
import { secondFactorRequired, sessionLimitReached } from './second-factor/second-factor.errors.js';
import { TokenReuseDetector } from './security/token-reuse.detector.js';
import { assertStorableData } from './session-data.js';
import type { DefaultSessionData, SessionDataPatch } from './session-data.types.js';
import { auditContext, type SessionValidator } from './session-validator.js';
import type { ResolvedSessionOptions } from './session.options.js';
import type { CreateSessionParams } from './store/session-store.types.js';
import { SessionLimitExceededError, type SessionStore } from './store/session.store.js';
import { digestBytes, generateToken, hashToken, tokenDigest } from './token/session-token.js';
import { DroppedCookieWarning } from './transport/cookie.transport.js';
import type { HttpRequestLike, HttpResponseLike } from './transport/http.js';
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

/**
 * Everything that hands the client a new token, for SessionService: a login's session
 * (create), a guest's first one (patchCurrent), a new token for a live one (rotate,
 * reauthenticate). The documentation of each is on SessionService.
 */
export class SessionIssuer {
  private readonly droppedCookie = new DroppedCookieWarning();
  /** Built at the first login that carries a token, then kept. */
  private tokenReuse?: TokenReuseDetector;

  constructor(
    private readonly store: SessionStore,
    private readonly validator: SessionValidator,
    private readonly transport: SessionTransport,
    private readonly options: ResolvedSessionOptions,
  ) {}

  async create<TData extends object = DefaultSessionData>(
    request: HttpRequestLike,
    response: HttpResponseLike,
    input: CreateSessionInput<TData>,
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

  /** A guest session holding `data`; the caller checked the data and the creation limit. */
  async startGuest(
    request: HttpRequestLike,
    response: HttpResponseLike,
    data: Record<string, unknown>,
  ): Promise<ActiveSession> {
    const carried = this.transport.read(request);
    const replaces = carried.kind === 'token' ? hashToken(carried.token) : null;
    const guest = await this.start(request, response, null, data, profileOf(this.options.lifetimes, 'guest'), replaces);
    return guest.session;
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

  async rotate(
    request: HttpRequestLike,
    response: HttpResponseLike,
    reason: 'manual' | 'reauthenticated',
  ): Promise<ActiveSession> {
    const session = requireSession(request);
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
}

/** The session the guard attached to this request; an error when the caller's route has none. */
export function requireSession(request: object): ActiveSession {
  const session = sessionOf(request);
  if (!session) throw new Error('No session on this request: call it from a route the SessionGuard protects');
  return session;
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
