import { CanActivate, ExecutionContext, ForbiddenException, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { isSessionResolved, sessionOf, type ActiveSession } from '../active-session.js';
import { csrfTokensMatch } from './csrf-token.js';
import { checkRequestOrigin } from './request-origin.js';
import { AggregatedAuditLog } from '../security/aggregated-audit.js';
import { sourceOf } from '../security/request-source.js';
import { SESSION_OPTIONS, SESSION_TRANSPORT } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { clientIp, headerValue, type HttpRequestLike } from '../transport/http.js';
import type { SessionTransport } from '../transport/session-transport.js';
import { HTTP_LIKE, requestOf, UnsupportedContextError } from '../guards/execution-context.js';
import { RouteFlagsMemo } from '../guards/route-flags.js';

export type CsrfFailure = 'cross_site' | 'origin_not_allowed' | 'csrf_token_missing' | 'csrf_token_invalid';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const MESSAGES: Record<CsrfFailure, string> = {
  cross_site: 'Cross-site request refused',
  origin_not_allowed: 'Request origin not allowed',
  csrf_token_missing: 'CSRF token missing',
  csrf_token_invalid: 'CSRF token does not match the session',
};

type RequestWithMethod = HttpRequestLike & { method?: string; protocol?: string };

/**
 * Cross-site request forgery defence for cookie sessions, on every unsafe method (anything
 * but GET, HEAD, OPTIONS). Registered globally right after SessionGuard (it needs the session
 * that guard attached). Bearer sessions need none: browsers never attach them on their own.
 *
 *  1. every unsafe request, @Public ones included (login CSRF): `Sec-Fetch-Site: cross-site`
 *     fails, and so does an Origin (without Origin: the Referer's origin) that is present and
 *     not exactly one of `csrf.allowedOrigins` (default: the request's own origin);
 *  2. with a cookie session: the `x-csrf-token` header must equal `session.csrfToken`
 *     (constant-time), so a token from any other session, the attacker's own included, fails.
 *
 * Failures answer 403 with a `reason` and are audited as `csrf_failed`, aggregated per
 * source and session and window, so a forged-request flood cannot flood the audit table.
 */
@Injectable()
export class CsrfGuard implements CanActivate {
  private readonly allowedOrigins: ReadonlySet<string> | undefined;
  private readonly routes = new RouteFlagsMemo();

  constructor(
    protected readonly reflector: Reflector,
    @Inject(SESSION_OPTIONS) protected readonly options: ResolvedSessionOptions,
    @Inject(SESSION_TRANSPORT) protected readonly transport: SessionTransport,
    protected readonly audit: AggregatedAuditLog,
  ) {
    this.allowedOrigins = options.csrf.allowedOrigins && new Set(options.csrf.allowedOrigins);
  }

  canActivate(context: ExecutionContext): boolean {
    // Only HTTP and GraphQL calls come from browsers that attach cookies on their own.
    if (!this.options.csrf.enabled || this.transport.kind !== 'cookie' || !HTTP_LIKE.has(context.getType<string>()))
      return true;
    const route = this.routes.of(this.reflector, context);
    if (route.skipCsrf) return true;
    let request: RequestWithMethod;
    try {
      request = this.getRequest(context);
    } catch (error) {
      // A GraphQL call without an HTTP request (a subscription) carries no cookie to forge with;
      // SessionGuard has already refused it unless it is public.
      if (error instanceof UnsupportedContextError && route.isPublic) return true;
      throw error;
    }
    if (this.isSafe(context, request)) return true;

    const session = sessionOf(request);
    const verdict = checkRequestOrigin(
      {
        secFetchSite: headerValue(request, 'sec-fetch-site'),
        origin: headerValue(request, 'origin'),
        referer: headerValue(request, 'referer'),
      },
      this.allowedOrigins ?? new Set([ownOrigin(request)]),
    );
    if (!verdict.ok) return this.fail(request, verdict.reason, session, verdict.origin);

    if (route.isPublic) return true;
    // Fail closed if registered in the wrong order: without the session we cannot check its token.
    if (!isSessionResolved(request))
      throw new Error('CsrfGuard must run after SessionGuard (register SessionGuard first)');
    if (!session || session.transport !== 'cookie' || !session.csrfToken) return true;

    const presented = headerValue(request, this.options.csrf.headerName);
    if (presented === undefined) return this.fail(request, 'csrf_token_missing', session);
    if (!csrfTokensMatch(session.csrfToken, presented)) return this.fail(request, 'csrf_token_invalid', session);
    return true;
  }

  /** The request of an HTTP call or of a GraphQL resolver (its context's `req`); override like SessionGuard.getRequestResponse. */
  protected getRequest(context: ExecutionContext): RequestWithMethod {
    return requestOf(context);
  }

  /**
   * Calls that must not change anything, so need no token: GET, HEAD and OPTIONS, and GraphQL
   * queries, judged by the executed operation's type since GraphQL sends queries by POST too.
   * Mutations, subscriptions and a resolver without `info` (fail closed) need the token.
   */
  protected isSafe(context: ExecutionContext, request: RequestWithMethod): boolean {
    if (context.getType<string>() === 'graphql') {
      return (
        context.getArgByIndex<{ operation?: { operation?: string } } | undefined>(3)?.operation?.operation === 'query'
      );
    }
    return SAFE_METHODS.has((request.method ?? '').toUpperCase());
  }

  protected fail(
    request: HttpRequestLike,
    reason: CsrfFailure,
    session: ActiveSession | undefined,
    origin?: string,
  ): never {
    this.audit.record({
      event: 'csrf_failed',
      source: sourceOf(clientIp(request)),
      sessionId: session?.id,
      userId: session?.userId,
      userAgent: headerValue(request, 'user-agent'),
      reason,
      origin,
    });
    throw new ForbiddenException({ statusCode: 403, error: 'Forbidden', message: messageFor(reason, request), reason });
  }
}

/** The origin the request was sent to, from Host and the protocol the framework saw. */
function ownOrigin(request: RequestWithMethod): string {
  const protocol = request.protocol === 'https' ? 'https' : 'http';
  return `${protocol}://${(headerValue(request, 'host') ?? '').toLowerCase()}`;
}

/** An Origin header as browsers serialize it; only such a value is echoed back to a client that may be hostile. */
const SERIALIZED_ORIGIN = /^(null|https?:\/\/([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:\d{1,5})?)$/i;

/**
 * origin_not_allowed names the option that would allow the origin (a Vite dev server on :5173
 * meets it first) and the origin itself when it came as a well-formed Origin header: nothing
 * else of the request is reflected, and the body is JSON.
 */
function messageFor(reason: CsrfFailure, request: HttpRequestLike): string {
  if (reason !== 'origin_not_allowed') return MESSAGES[reason];
  const origin = headerValue(request, 'origin');
  const shown =
    origin !== undefined && origin.length <= 200 && SERIALIZED_ORIGIN.test(origin) ? `'${origin}'` : undefined;
  return shown
    ? `Request origin ${shown} not allowed: add it to the csrf.allowedOrigins option of SessionModule (default: only the app's own origin)`
    : `Request origin not allowed: allow it with the csrf.allowedOrigins option of SessionModule (default: only the app's own origin)`;
}
