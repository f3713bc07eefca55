import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import { sessionOf } from '../active-session.js';
import { requestOf } from '../guards/execution-context.js';

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

/** The active session of the request (undefined on @Public/@OptionalSession routes without one). */
export const CurrentSession = createParamDecorator((_: unknown, context: ExecutionContext) =>
  sessionOf(requestOf(context)),
); // HTTP, or the GraphQL context's req
