import { CanActivate, ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { internalsOf, sessionOf, type SessionFailureReason } from '../active-session.js';
import { FRESH_SESSION_MAX_AGE } from '../decorators/security.metadata.js';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { requestOf } from './execution-context.js';

/**
 * Applied by @RequireFreshSession(): after the global SessionGuard, checks how long ago the
 * session's user last authenticated, on the database clock. A request that came with the
 * rotated-out token (grace window) is never fresh: a step-up must not be usable by whoever
 * holds the token from before it.
 */
@Injectable()
export class FreshSessionGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const maxAgeMs =
      this.reflector.getAllAndOverride<number | null | undefined>(FRESH_SESSION_MAX_AGE, [
        context.getHandler(),
        context.getClass(),
      ]) ?? this.options.stepUp.maxAgeMs;
    const session = sessionOf(requestOf(context));
    if (!session || session.isGuest) return this.deny('missing', 'No session: log in first');
    if (session.secondFactorPending)
      return this.deny('second_factor_required', 'This session waits for its second factor: complete the login first');
    const internals = internalsOf(session);
    const now = internals?.checkedAt ?? Date.now();
    // An impersonation session is never fresh: the admin behind it never proved to be the user.
    const fresh =
      session.impersonator === undefined &&
      internals?.isCurrentToken !== false &&
      now - session.authenticatedAt.getTime() <= maxAgeMs;
    if (!fresh) return this.deny('reauth_required', 'This action needs a recent login: authenticate again');
    return true;
  }

  private deny(reason: SessionFailureReason, message: string): never {
    throw new UnauthorizedException({ statusCode: 401, error: 'Unauthorized', message, reason });
  }
}
