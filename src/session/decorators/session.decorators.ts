import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import { sessionOf } from '../active-session.js';
import { requestOf } from '../guards/execution-context.js';

export const PUBLIC_ROUTE = 'nest-pg-session:public';
export const OPTIONAL_SESSION = 'nest-pg-session:optional';

/** The route needs no session; the guard does not even read one. */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** The route works without a session but gets one (`@CurrentSession()`) when a valid token is sent. */
export const OptionalSession = () => SetMetadata(OPTIONAL_SESSION, true);

/** The active session of the request (undefined on @Public/@OptionalSession routes without one). */
export const CurrentSession = createParamDecorator((_: unknown, context: ExecutionContext) =>
  sessionOf(requestOf(context)),
); // HTTP, or the GraphQL context's req
