import {
  CanActivate,
  ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import { sessionOf, type ActiveSession } from '../active-session.js';
import { CsrfGuard } from '../csrf/csrf.guard.js';
import { SessionGuard } from '../guards/session.guard.js';
import { secondFactorRequired } from '../second-factor/second-factor.errors.js';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import type { HttpRequestLike } from '../transport/http.js';

/**
 * Guards the admin API: no valid session → 401 (as everywhere), a session that `authorize`
 * does not answer `true` for → 403. Works without the global guard too (`globalGuard: false`):
 * then it validates the session itself, and checks CSRF itself (the admin API revokes and erases).
 */
@Injectable()
export class SessionAdminGuard implements CanActivate {
  // A property, not a constructor parameter: subclasses (allowsImpersonation) keep calling super as before.
  @Inject(CsrfGuard) private readonly csrfGuard!: CsrfGuard;

  constructor(
    private readonly sessionGuard: SessionGuard,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<HttpRequestLike>();
    if (!sessionOf(request)) await this.sessionGuard.canActivate(context); // throws 401 / 503
    const session = sessionOf(request);
    if (!session)
      throw new UnauthorizedException({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'No session: log in first',
        reason: 'missing',
      });
    if (session.secondFactorPending) throw secondFactorRequired();
    this.csrfGuard.canActivate(context); // throws 403; a second check after the global guard's finds the same
    if (session.impersonator !== undefined && !this.allowsImpersonation(session, request))
      throw new ForbiddenException({
        statusCode: 403,
        error: 'Forbidden',
        reason: 'impersonation',
        message: 'An impersonation session may not use the session admin API',
      });
    const authorize = this.options.admin.authorize;
    // Fail closed: disabled, no rule, or any answer but `true` is a no (a throwing rule is a 500, never a yes).
    if (!this.options.admin.enabled || !authorize || (await authorize(session, request)) !== true) {
      throw new ForbiddenException({
        statusCode: 403,
        error: 'Forbidden',
        message: 'This session may not use the session admin API',
      });
    }
    return true;
  }

  /** Whether an impersonation session may go on to `authorize`. Default: never (override in a subclass to allow). */
  protected allowsImpersonation(_session: ActiveSession, _request: HttpRequestLike): boolean {
    return false;
  }
}
