import { Inject, Injectable } from '@nestjs/common';
import { attachSession, internalsOf, sessionOf, type ActiveSession } from '../active-session.js';
import type { IssuedSession } from '../impersonation/session-impersonation.js';
import { profileOf } from '../lifetime/lifetime.options.js';
import { auditContext, SessionValidator } from '../session-validator.js';
import { SESSION_OPTIONS, SESSION_TRANSPORT } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { SessionLimitExceededError, SessionStore } from '../store/session.store.js';
import { digestBytes, generateToken, tokenDigest } from '../token/session-token.js';
import type { HttpRequestLike, HttpResponseLike } from '../transport/http.js';
import type { SessionTransport } from '../transport/session-transport.js';
import {
  noPendingSession,
  notPending,
  pendingSessionGone,
  secondFactorFailed,
  secondFactorLocked,
  sessionLimitReached,
} from './second-factor.errors.js';

/** What the app's check gets: the pending session (its `userId` names whose factor to verify). */
export type SecondFactorCheck = (session: ActiveSession) => boolean | Promise<boolean>;

/**
 * Second factors behind SessionService.verifySecondFactor / completeSecondFactor /
 * failSecondFactor. The module verifies no factor itself: the app does, on a
 * `@SecondFactorRoute()`, and tells the module the outcome. Every statement names the session by
 * id and pending token, so a session that stopped being pending (completed, revoked, expired)
 * between the guard and the call is refused, never upgraded twice.
 */
@Injectable()
export class SessionSecondFactor {
  constructor(
    private readonly store: SessionStore,
    private readonly validator: SessionValidator,
    @Inject(SESSION_TRANSPORT) private readonly transport: SessionTransport,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {}

  /**
   * Takes an attempt first (none left: the session is revoked, 401 'revoked'; the user's
   * failures across all their pending sessions fill `secondFactor.userFailureLimit`: it ends,
   * 401 'second_factor_locked'), then runs `check`: true completes, anything else counts as a
   * failure (401 'second_factor_failed' with `attemptsLeft`; the last one revokes). Concurrent
   * guesses share the same attempts, across the user's pending sessions too.
   */
  async verify(request: HttpRequestLike, response: HttpResponseLike, check: SecondFactorCheck): Promise<IssuedSession> {
    const { session, tokenHash, userId } = this.pending(request, 'verifySecondFactor');
    const sf = this.options.secondFactor;
    const reserved = await this.store.reserveSecondFactorAttempt({
      id: session.id,
      tokenHash,
      userId,
      maxAttempts: sf.maxAttempts,
      userFailureLimit: sf.userFailureLimit,
      userFailureWindowMs: sf.userFailureWindowMs,
    });
    if (reserved.locked) return this.locked(request, response, session.id, tokenHash, reserved.retryAfterMs);
    // None left (or no longer live): revoke it if it still stands, and refuse.
    if (reserved.attempts === undefined) return this.failed(request, response, session.id, tokenHash, false);
    // A check that throws keeps its attempt used (reserved above) and its error.
    if ((await check(session)) !== true) return this.failed(request, response, session.id, tokenHash, false);
    return this.completeVerified(request, response);
  }

  /**
   * The app verified the factor itself: refused like verify() when the user's failures fill
   * `userFailureLimit` (a correct guess among unlimited app-side guesses must not pass), else completed.
   */
  async complete(request: HttpRequestLike, response: HttpResponseLike): Promise<IssuedSession> {
    const { session, tokenHash, userId } = this.pending(request, 'completeSecondFactor');
    const sf = this.options.secondFactor;
    const lock = await this.store.userSecondFactorLock(userId, sf.userFailureLimit, sf.userFailureWindowMs);
    if (lock.locked) return this.locked(request, response, session.id, tokenHash, lock.retryAfterMs);
    return this.completeVerified(request, response);
  }

  /** Ends the pending session (audited) and answers 401 'second_factor_locked'. */
  private async locked(
    request: HttpRequestLike,
    response: HttpResponseLike,
    id: string,
    tokenHash: Buffer,
    retryAfterMs: number,
  ): Promise<never> {
    const ended = await this.store.endPending(id, tokenHash, 'second_factor_locked', auditContext(request));
    attachSession(request, null);
    if (!ended) throw pendingSessionGone();
    this.transport.clear(response);
    throw secondFactorLocked(retryAfterMs);
  }

  /** The factor was verified: new token, full session, authenticated now. */
  private async completeVerified(request: HttpRequestLike, response: HttpResponseLike): Promise<IssuedSession> {
    const { session, tokenHash, userId } = this.pending(request, 'completeSecondFactor');
    const profile = profileOf(this.options.lifetimes, session.lifetime);
    const token = generateToken();
    const digest = tokenDigest(token);
    const row = await this.store
      .completeSecondFactor({
        ...this.params(request, session.id, tokenHash, false),
        newTokenHash: digestBytes(digest),
        idleTimeoutMs: profile.idleTimeoutMs,
        absoluteTimeoutMs: profile.absoluteTimeoutMs,
        userId,
        limit: this.options.sessionLimit,
      })
      .catch((error: unknown) => {
        if (!(error instanceof SessionLimitExceededError)) throw error;
        // 'reject' at the limit: the pending session ended (audited) in the same transaction.
        attachSession(request, null);
        this.transport.clear(response);
        throw sessionLimitReached(error.limit);
      });
    if (!row) {
      // Expired, revoked or completed by a concurrent request: never upgraded twice.
      attachSession(request, null);
      throw pendingSessionGone();
    }
    this.transport.write(response, token, row.absoluteExpiresAt.getTime() - row.dbNow.getTime());
    const full = this.validator.attach(request, row, token, digest);
    return {
      sessionId: full.id,
      userId: full.userId,
      expiresAt: full.expiresAt,
      ...(this.transport.kind === 'bearer' ? { token } : { csrfToken: full.csrfToken }),
    };
  }

  /** The app checked a factor and it was wrong: counts an attempt, revoking at the limit; always throws 401. */
  async fail(request: HttpRequestLike, response: HttpResponseLike): Promise<never> {
    const { session, tokenHash } = this.pending(request, 'failSecondFactor');
    return this.failed(request, response, session.id, tokenHash, true);
  }

  /** Records a failure (`counted`: not reserved before) and throws 401 with the attempts left. */
  private async failed(
    request: HttpRequestLike,
    response: HttpResponseLike,
    id: string,
    tokenHash: Buffer,
    counted: boolean,
  ): Promise<never> {
    const result = await this.store.failSecondFactor(this.params(request, id, tokenHash, counted));
    if (!result) {
      // It was no live pending session any more (expired, completed or revoked meanwhile): say so.
      attachSession(request, null);
      throw pendingSessionGone();
    }
    const left = result.revoked ? 0 : this.options.secondFactor.maxAttempts - result.attempts;
    // This request revoked it: the cookie is dead for sure, and no later response can have replaced it.
    if (result.revoked) this.transport.clear(response);
    if (left === 0) attachSession(request, null);
    throw secondFactorFailed(left);
  }

  private params(request: HttpRequestLike, id: string, tokenHash: Buffer, counted: boolean) {
    return {
      id,
      tokenHash,
      counted,
      maxAttempts: this.options.secondFactor.maxAttempts,
      context: auditContext(request),
    };
  }

  /** The request's pending session and its token hash; a clear error for anything else. */
  private pending(
    request: HttpRequestLike,
    method: string,
  ): { session: ActiveSession; tokenHash: Buffer; userId: string } {
    const session = sessionOf(request);
    if (!session) throw noPendingSession(method);
    if (!session.secondFactorPending || session.userId === null) throw notPending(method);
    const internals = internalsOf(session);
    if (!internals) throw new Error(`SessionService.${method}: the session was not attached by this module`);
    return { session, tokenHash: digestBytes(internals.tokenDigest), userId: session.userId };
  }
}
