import {
  CanActivate, ExecutionContext, HttpException, HttpStatus, Inject, Injectable, Optional, UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { attachSession, type SessionFailureReason } from '../active-session.js';
import { OPTIONAL_SESSION, PUBLIC_ROUTE } from '../decorators/session.decorators.js';
import { OUTCOME_OF_REASON, SessionMetrics } from '../metrics/session-metrics.js';
import { SessionValidator } from '../session-validator.js';
import { StoreUnavailableError } from '../store/session.store.js';
import { setHeader, type HttpRequestLike, type HttpResponseLike } from '../transport/http.js';

/**
 * Deny by default: every route needs a valid session unless marked @Public(). Registered
 * globally by SessionModule (unless `globalGuard: false`). Subclass and override the
 * protected methods to change how the request is found or how failures are reported.
 */
@Injectable()
export class SessionGuard implements CanActivate {
  // A property, not a constructor parameter: subclasses keep their super(reflector, validator) call.
  @Optional() @Inject(SessionMetrics) private readonly metrics?: SessionMetrics;

  constructor(
    protected readonly reflector: Reflector,
    protected readonly validator: SessionValidator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    const optional = this.reflector.getAllAndOverride<boolean>(OPTIONAL_SESSION, targets) === true;
    if (!optional && this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets) === true) return true;

    const { request, response } = this.getRequestResponse(context);
    let outcome;
    try {
      outcome = await this.validator.validate(request, response);
    } catch (error) {
      // Fail closed: without the store no request is let through; the 503 tells the client to retry.
      // (SessionStore has already logged the failed statement with its cause.)
      this.metrics?.validation(error instanceof StoreUnavailableError ? 'db_error' : 'error');
      throw error;
    }
    this.metrics?.validation(outcome.ok ? 'ok' : OUTCOME_OF_REASON[outcome.reason]);
    if (outcome.ok) {
      // Whatever the handler returns is this user's: no shared cache may keep it.
      setHeader(response, 'Cache-Control', 'no-store');
      return true;
    }
    attachSession(request, null);
    if (outcome.reason === 'too_many_invalid_tokens') return this.throwTooManyInvalidTokens();
    if (optional) return true;
    return this.throwUnauthorized(outcome.reason);
  }

  protected getRequestResponse(context: ExecutionContext): { request: HttpRequestLike; response: HttpResponseLike } {
    if (context.getType() !== 'http') {
      throw new UnauthorizedException({ statusCode: 401, error: 'Unauthorized', message: `SessionGuard does not support '${context.getType()}' contexts`, reason: 'unsupported_context' });
    }
    const http = context.switchToHttp();
    return { request: http.getRequest(), response: http.getResponse() };
  }

  protected throwUnauthorized(reason: SessionFailureReason): never {
    throw new UnauthorizedException({ statusCode: 401, error: 'Unauthorized', message: MESSAGES[reason], reason });
  }

  /** The validator already set Retry-After; no session (not even an optional one) is looked up. */
  protected throwTooManyInvalidTokens(): never {
    const reason: SessionFailureReason = 'too_many_invalid_tokens';
    throw new HttpException({ statusCode: 429, error: 'Too Many Requests', message: MESSAGES[reason], reason }, HttpStatus.TOO_MANY_REQUESTS);
  }
}

const MESSAGES: Record<SessionFailureReason, string> = {
  missing: 'No session: log in first',
  invalid: 'The session token is not valid',
  idle_timeout: 'The session ended after inactivity',
  absolute_timeout: 'The session reached its maximum lifetime',
  revoked: 'The session was revoked',
  too_many_invalid_tokens: 'Too many invalid session tokens from this address: try again later',
  reauth_required: 'This action needs a recent login: authenticate again',
};
