import { CanActivate, ExecutionContext, ForbiddenException, Injectable } from '@nestjs/common';
import { sessionOf } from '../active-session.js';
import { requestOf } from './execution-context.js';

/**
 * Applied by @RealUserOnly(): after the global SessionGuard, refuses an impersonation session
 * (403, reason 'impersonation'), so an admin acting as a user cannot change the user's password,
 * reach admin routes, or do whatever else the app reserves for the user in person.
 */
@Injectable()
export class RealUserGuard implements CanActivate {
  /** true for every session but an impersonation one (and for no session: the SessionGuard decides that). */
  canActivate(context: ExecutionContext): boolean {
    const session = sessionOf(requestOf(context));
    if (session?.impersonator === undefined) return true;
    throw new ForbiddenException({
      statusCode: 403,
      error: 'Forbidden',
      reason: 'impersonation',
      message: 'Not while impersonating: only the user in person may do this',
    });
  }
}
