import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import { sessionOf } from '../active-session.js';
import { requestOf } from '../guards/execution-context.js';
import { SECOND_FACTOR_ROUTE } from '../second-factor/second-factor.decorator.js';
import { secondFactorRequired } from '../second-factor/second-factor.errors.js';

export const PUBLIC_ROUTE = 'nest-pg-session:public';
export const OPTIONAL_SESSION = 'nest-pg-session:optional';
export const GUEST_SESSION = 'nest-pg-session:guest';

/** The route needs no session; the guard does not even read one. */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** The route works without a session but gets one (`@CurrentSession()`) when a valid token is sent. */
export const OptionalSession = () => SetMetadata(OPTIONAL_SESSION, true);

/**
 * The route works without a session and sees a guest's as well as a user's (`guests.enabled`):
 * `@CurrentSession() session?: ActiveSession | ActiveGuestSession`, told apart by `session.isGuest`.
 * `SessionService.patchCurrent()` here starts a guest session on the first write. Reads never
 * create one. Every other route treats a guest's token as no session.
 */
export const GuestSession = () => SetMetadata(GUEST_SESSION, true);

/**
 * The active session of the request (undefined on @Public/@OptionalSession routes without one).
 * HTTP, or the GraphQL context's req: one GraphQL request may run a @GuestSession() resolver and
 * others, and only the former see a guest.
 */
export const CurrentSession = createParamDecorator((_: unknown, context: ExecutionContext) => {
  const session = sessionOf(requestOf(context));
  if (session?.isGuest && !isMarked(context, GUEST_SESSION)) return undefined;
  // Also without the global guard (or after create() on a @Public() route): only verification routes read it.
  if (session?.secondFactorPending && !isMarked(context, SECOND_FACTOR_ROUTE)) throw secondFactorRequired();
  return session;
});

function isMarked(context: ExecutionContext, key: string): boolean {
  const marked = (target: object) => Reflect.getMetadata(key, target) as boolean | undefined;
  return (marked(context.getHandler()) ?? marked(context.getClass())) === true;
}
