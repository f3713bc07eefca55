import { applyDecorators, SetMetadata, UseGuards } from '@nestjs/common';
import { parseDuration, type Duration } from '../duration.js';
import { FreshSessionGuard } from '../guards/fresh-session.guard.js';
import { RealUserGuard } from '../guards/real-user.guard.js';
import { FRESH_SESSION_MAX_AGE } from './security.metadata.js';

/**
 * Step-up: the route needs a session whose last authentication (login or
 * `SessionService.reauthenticate()`) is at most `maxAge` old ('5m', '30s', ms); older ones
 * get 401 with reason 'reauth_required'. Without an argument, `stepUp.maxAge` (default 5m).
 */
export function RequireFreshSession(maxAge?: Duration) {
  const maxAgeMs = maxAge === undefined ? null : parseDuration(maxAge);
  if (maxAgeMs === undefined || maxAgeMs === 0) {
    throw new TypeError(
      `@RequireFreshSession: maxAge must be a positive duration such as '5m'; got ${JSON.stringify(maxAge)}`,
    );
  }
  return applyDecorators(SetMetadata(FRESH_SESSION_MAX_AGE, maxAgeMs), UseGuards(FreshSessionGuard));
}

/**
 * The route is for the user in person: an impersonation session (`SessionService.impersonate`)
 * gets 403 with reason 'impersonation'. Put it on password and e-mail changes, MFA settings,
 * admin routes, and `impersonate` itself.
 */
export function RealUserOnly() {
  return UseGuards(RealUserGuard);
}
