import type { ExecutionContext } from '@nestjs/common';
import type { HttpRequestLike, HttpResponseLike } from '../transport/http.js';

export interface RequestResponse {
  request: HttpRequestLike;
  response: HttpResponseLike;
}

/** Context types whose calls carry an HTTP request (and so may carry a browser's cookies). */
export const HTTP_LIKE: ReadonlySet<string> = new Set(['http', 'graphql']);

/** GraphQL's resolver context as the Apollo and Mercurius drivers build it (the third resolver argument). */
interface GraphQLContextLike {
  req?: HttpRequestLike & { res?: HttpResponseLike };
  res?: HttpResponseLike;
  /** Fastify: `context: (request, reply) => ({ req: request, reply })`, and Mercurius' own context. */
  reply?: HttpResponseLike & { request?: HttpRequestLike };
}

/**
 * Why a context has no request to read a session from. Thrown, not answered as 401: it is a
 * wiring mistake to fix in the app, and the message says how.
 */
export class UnsupportedContextError extends Error {
  override name = 'UnsupportedContextError';
}

/**
 * The HTTP request and response behind a handler call:
 *  - 'http': the framework's request and response (Express or Fastify);
 *  - 'graphql': `req` and `res` (or Fastify's `reply`) of the GraphQL context, the same place
 *    GqlExecutionContext reads them, so @nestjs/graphql need not be loaded here;
 *  - anything else (WebSocket messages, microservices) has no request per call: an error.
 *    A WebSocket keeps the token of its handshake, so re-checking it on every message would,
 *    once the browser's cookie has rotated, present a rotated-out token and trip token-reuse
 *    detection (revoking the user's session): SessionSockets checks the handshake instead.
 */
export function requestResponseOf(context: ExecutionContext): RequestResponse {
  const type = context.getType<string>();
  if (type === 'http') {
    const http = context.switchToHttp();
    return { request: http.getRequest(), response: http.getResponse() };
  }
  if (type === 'graphql') {
    const gql = context.getArgByIndex<GraphQLContextLike | undefined>(2);
    const request = gql?.req ?? gql?.reply?.request;
    // Express links the response to the request (req.res); Fastify's request has no reply, so it must be in the context.
    const response = gql?.res ?? gql?.reply ?? gql?.req?.res;
    if (!request?.headers || !response) {
      throw new UnsupportedContextError(
        'nest-pg-session: the GraphQL context has no HTTP request and response; with Express the default context works, ' +
          'with Fastify set `context: (request, reply) => ({ req: request, reply })` (GraphQL subscriptions over WebSockets are not supported)',
      );
    }
    return { request, response };
  }
  throw new UnsupportedContextError(
    `nest-pg-session: SessionGuard does not support '${type}' contexts. ` +
      'Mark the handler @Public() or register SessionGuard only for HTTP, GraphQL and gateways.',
  );
}

/**
 * The request of an HTTP or GraphQL call (what @CurrentSession and the guards read the session
 * from); for a gateway message, the socket, which carries the session checked at its handshake.
 */
export function requestOf(context: ExecutionContext): HttpRequestLike {
  if (context.getType<string>() === 'ws') return context.switchToWs().getClient<HttpRequestLike>();
  return requestResponseOf(context).request;
}
