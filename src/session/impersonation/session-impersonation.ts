import {
  BadRequestException,
  ForbiddenException,
  Inject,
  Injectable,
  Logger,
  UnauthorizedException,
} from '@nestjs/common';
import { attachSession, sessionOf, type ActiveSession } from '../active-session.js';
import { boundText } from '../audit/audit-event.js';
import { profileOf } from '../lifetime/lifetime.options.js';
import { printable } from '../printable.js';
import { secondFactorRequired } from '../second-factor/second-factor.errors.js';
import { auditContext, SessionValidator } from '../session-validator.js';
import { SESSION_OPTIONS, SESSION_TRANSPORT } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import type { SessionLookup } from '../store/session-row.js';
import { SessionStore } from '../store/session.store.js';
import { digestBytes, generateToken, tokenDigest } from '../token/session-token.js';
import type { HttpRequestLike, HttpResponseLike } from '../transport/http.js';
import type { SessionTransport } from '../transport/session-transport.js';

/** Longest `reason` accepted, in characters: it is stored in every audit row of the start. */
export const MAX_IMPERSONATION_REASON_LENGTH = 500;

/** What `SessionService.impersonate()` takes. */
export interface ImpersonateInput {
  /** The user to act as. */
  userId: string;
  /** Why (a ticket, a request from the user): required, 1..500 characters, recorded in the audit log. */
  reason: string;
}

/** A session the client now holds: what `impersonate()` and `stopImpersonating()` return. */
export interface IssuedSession {
  /** The session's id (stopImpersonating(): the admin's own session, as before impersonating). */
  sessionId: string;
  /** The user the session acts as. */
  userId: string;
  /** The earlier of its idle and absolute expiry. */
  expiresAt: Date;
  /** impersonate(): the admin acting as `userId`. */
  impersonator?: string;
  /** Bearer transport only: the client's token. Never present with cookies. */
  token?: string;
  /** Cookie transport only: the CSRF token for the next unsafe request. */
  csrfToken?: string;
}

/**
 * Impersonation behind SessionService.impersonate / stopImpersonating. The admin's own
 * session stays live underneath (its token leaves the client: the cookie is replaced); the
 * impersonation session records both, lives at most `impersonation.maxDuration` and never past
 * the admin's session, and ends when it is stopped or the admin's session ends. Stopping gives
 * the admin's session a new token, server-side, by its id.
 */
@Injectable()
export class SessionImpersonation {
  private readonly logger = new Logger('SessionImpersonation');

  constructor(
    private readonly store: SessionStore,
    private readonly validator: SessionValidator,
    @Inject(SESSION_TRANSPORT) private readonly transport: SessionTransport,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {}

  async start(request: HttpRequestLike, response: HttpResponseLike, input: ImpersonateInput): Promise<IssuedSession> {
    if (!this.options.impersonation.enabled)
      throw new Error('SessionService.impersonate: impersonation.enabled is false');
    const admin = requireSession(request, 'impersonate');
    if (admin.secondFactorPending) throw secondFactorRequired();
    if (typeof input?.userId !== 'string' || input.userId.length === 0 || input.userId.length > 255)
      throw new TypeError('SessionService.impersonate: userId must be a string of 1..255 characters');
    if (admin.impersonator)
      throw new ForbiddenException({
        statusCode: 403,
        error: 'Forbidden',
        reason: 'impersonating',
        message: 'An impersonation session cannot impersonate: stop impersonating first',
      });
    if (input.userId === admin.userId) throw new BadRequestException('An admin cannot impersonate themselves');
    const reason = checkedReason(input.reason);
    const token = generateToken();
    const digest = tokenDigest(token);
    const row = await this.store.startImpersonation({
      impersonatorSessionId: admin.id,
      userId: input.userId,
      tokenHash: digestBytes(digest),
      idleTimeoutMs: profileOf(this.options.lifetimes, admin.lifetime).idleTimeoutMs,
      maxDurationMs: this.options.impersonation.maxDurationMs,
      reason,
      context: auditContext(request),
    });
    // The admin's session was revoked or expired since this request was validated.
    if (!row) throw unauthorized('revoked', 'The session was revoked');
    this.logger.log(
      `${printable(admin.userId)} started impersonating ${printable(input.userId)} (session ${row.id}): ${printable(reason, 200)}`,
    );
    return { ...this.issue(request, response, row, token, digest), impersonator: admin.userId };
  }

  async stop(request: HttpRequestLike, response: HttpResponseLike): Promise<IssuedSession> {
    const session = requireSession(request, 'stopImpersonating');
    if (!session.impersonator)
      throw new BadRequestException({
        statusCode: 400,
        error: 'Bad Request',
        reason: 'not_impersonating',
        message: 'This session is not an impersonation',
      });
    const token = generateToken();
    const digest = tokenDigest(token);
    const { ended, returnedTo } = await this.store.stopImpersonation({
      id: session.id,
      newTokenHash: digestBytes(digest),
      idleTimeoutMs: profileOf(this.options.lifetimes, session.lifetime).idleTimeoutMs,
      context: auditContext(request),
    });
    if (!ended || !returnedTo) {
      // Ended here with nothing to return to: clear the dead cookie. Not ended here: another
      // request (a double click) may have stopped it and set the admin's cookie: leave it alone.
      if (ended) this.transport.clear(response);
      attachSession(request, null);
      throw unauthorized(
        'revoked',
        ended ? "The admin's own session has ended: log in again" : 'The session was revoked',
      );
    }
    this.logger.log(`${printable(session.impersonator)} stopped impersonating ${printable(session.userId)}`);
    return this.issue(request, response, returnedTo, token, digest);
  }

  /** Sends the token, attaches the session to the request, and says what the client holds now. */
  private issue(
    request: HttpRequestLike,
    response: HttpResponseLike,
    row: SessionLookup,
    token: string,
    digest: string,
  ): IssuedSession {
    this.transport.write(response, token, row.absoluteExpiresAt.getTime() - row.dbNow.getTime());
    const session = this.validator.attach(request, row, token, digest);
    return {
      sessionId: session.id,
      userId: session.userId,
      expiresAt: session.expiresAt,
      ...(this.transport.kind === 'bearer' ? { token } : { csrfToken: session.csrfToken }),
    };
  }
}

/** A reason is required, bounded and stored without NUL; logs print it escaped (printable). */
function checkedReason(reason: unknown): string {
  if (typeof reason !== 'string' || reason.trim().length === 0)
    throw new BadRequestException('An impersonation needs a reason');
  if (reason.length > MAX_IMPERSONATION_REASON_LENGTH)
    throw new BadRequestException(`The reason must be at most ${MAX_IMPERSONATION_REASON_LENGTH} characters`);
  return boundText(reason.trim(), MAX_IMPERSONATION_REASON_LENGTH)!;
}

function requireSession(request: object, method: string): ActiveSession {
  const session = sessionOf(request);
  if (!session)
    throw new Error(
      `SessionService.${method}: no session on this request: call it from a route the SessionGuard protects`,
    );
  return session;
}

function unauthorized(reason: 'revoked', message: string): UnauthorizedException {
  return new UnauthorizedException({ statusCode: 401, error: 'Unauthorized', message, reason });
}
