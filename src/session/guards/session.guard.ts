import {
  CanActivate,
  ExecutionContext,
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  Optional,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { attachSession, sessionOf, type SessionFailureReason } from '../active-session.js';
import { andThen } from '../maybe-async.js';
import { OUTCOME_OF_REASON, SessionMetrics } from '../metrics/session-metrics.js';
import { SessionValidator, type PendingOutcome, type ValidationOutcome } from '../session-validator.js';
import { StoreUnavailableError } from '../store/pg-errors.js';
import {
  frameworkClientIp,
  rememberClientIp,
  setHeader,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../transport/http.js';
import { allowGuestCreation } from '../request-state.js';
import { HTTP_LIKE, requestResponseOf, UnsupportedContextError } from './execution-context.js';
import { RouteFlagsMemo } from './route-flags.js';
import { SessionSockets } from '../socket/session-sockets.js';

/**
 * Deny by default: every route needs a valid session unless marked @Public(). Registered
 * globally by SessionModule (unless `globalGuard: false`). Works for HTTP (Express, Fastify)
 * and GraphQL resolvers, and gateway messages on sockets accepted by SessionSockets; other
 * contexts (microservices) throw an UnsupportedContextError unless the handler is @Public().
 *
 * Like @nestjs/throttler's guard, it is meant to be subclassed: override the protected
 * methods (`shouldSkip`, `getRequestResponse`, `getClientIp`, `throwUnauthorized`, ...) and
 * register the subclass with `globalGuard: false` and
 * `{ provide: APP_GUARD, useClass: MyGuard }, { provide: APP_GUARD, useExisting: CsrfGuard }`.
 */
@Injectable()
export class SessionGuard implements CanActivate {
  // A property, not a constructor parameter: subclasses keep their super(reflector, validator) call.
  @Optional() @Inject(SessionMetrics) private readonly metrics?: SessionMetrics;
  @Optional() @Inject(SessionSockets) private readonly sockets?: SessionSockets;
  private readonly routes = new RouteFlagsMemo();

  constructor(
    protected readonly reflector: Reflector,
    protected readonly validator: SessionValidator,
  ) {}

  /** Synchronous unless `shouldSkip` or the validator has to wait (for the database). */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    // Only `true` skips: a truthy non-boolean (an Observable, say) must not let a request through unchecked.
    return andThen(this.shouldSkip(context), (skipped) => this.activate(context, skipped === true));
  }

  private activate(context: ExecutionContext, skipped: boolean): boolean | Promise<boolean> {
    const route = this.routes.of(this.reflector, context);
    const optional = route.optional;
    const isPublic = skipped || route.isPublic;
    // A public or skipped handler in a context without a request (a WebSocket message, a GraphQL
    // subscription) has nothing to read.
    if (isPublic && !HTTP_LIKE.has(context.getType<string>())) return true;
    if (context.getType<string>() === 'ws')
      return this.activateSocket(context.switchToWs().getClient<object>(), optional);

    let request: HttpRequestLike, response: HttpResponseLike;
    try {
      ({ request, response } = this.getRequestResponse(context));
    } catch (error) {
      if (isPublic && error instanceof UnsupportedContextError) return true;
      throw error;
    }
    // Per handler: one GraphQL request runs several, and only a @GuestSession() one may start a guest.
    allowGuestCreation(request, route.guests && !skipped);
    if (skipped) {
      // Say "no session here" rather than nothing: CsrfGuard then still checks the origin of an
      // unsafe request, instead of taking the missing answer for a guard registered out of order.
      attachSession(request, null);
      return true;
    }
    // Also on @Public() routes: the login's `created` audit row must carry the same address.
    rememberClientIp(request, this.getClientIp(request));
    if (isPublic) return true;
    // Several guarded resolvers of one GraphQL request (or the guard applied twice) check once;
    // a guest attached for a @GuestSession() resolver is still no session for the others.
    const attached = sessionOf(request);
    if (attached?.secondFactorPending && !route.secondFactor) return this.throwUnauthorized('second_factor_required');
    if (attached && (!attached.isGuest || route.guests)) return true;
    if (attached) return optional || this.throwUnauthorized('missing');

    // Before the check: an SSE stream of this request (whileLive) then misses no notice sent meanwhile.
    const ticket = this.sockets?.ticket();
    let outcome: PendingOutcome;
    try {
      outcome = this.validator.validate(request, response, route.guests, true, route.secondFactor);
    } catch (error) {
      this.recordFailure(error);
      throw error;
    }
    return andThen(
      outcome,
      (settled) => {
        if (settled.ok && ticket !== undefined) this.sockets!.checkedAt(settled.session, ticket);
        return this.conclude(settled, request, response, optional);
      },
      (error: unknown) => {
        this.recordFailure(error);
        throw error;
      },
    );
  }

  /**
   * A gateway message: allowed while the socket's session (checked at its handshake by
   * SessionSockets, and closed by the registry when it ends) is live; the message counts as
   * activity. A guest never has one (refused at the handshake). False: Nest answers
   * 'Forbidden resource' on the socket; an @OptionalSession() handler runs without a session.
   */
  private async activateSocket(client: object, optional: boolean): Promise<boolean> {
    const session = await this.sockets?.sessionOf(client);
    if (!session) return optional;
    this.sockets!.activity(client);
    return true;
  }

  /**
   * Counts a validation that ended in an error, which the caller rethrows: fail closed, no
   * request passes without the store, and its 503 tells the client to retry. (SessionStore
   * has already logged the failed statement with its cause.)
   */
  private recordFailure(error: unknown): void {
    this.metrics?.validation(error instanceof StoreUnavailableError ? 'db_error' : 'error');
  }

  private conclude(
    outcome: ValidationOutcome,
    request: HttpRequestLike,
    response: HttpResponseLike,
    optional: boolean,
  ): boolean {
    this.metrics?.validation(outcome.ok ? 'ok' : OUTCOME_OF_REASON[outcome.reason]);
    if (outcome.ok) {
      // Whatever the handler returns is this user's: no shared cache may keep it.
      setHeader(response, 'Cache-Control', 'no-store');
      return true;
    }
    attachSession(request, null);
    if (outcome.reason === 'too_many_invalid_tokens') return this.throwTooManyInvalidTokens();
    // A pending session is refused even where a session is optional: it is no login yet, and no guest either.
    if (optional && outcome.reason !== 'second_factor_required') return true;
    return this.throwUnauthorized(outcome.reason);
  }

  /** Return true to let a call through without looking at sessions at all (e.g. health checks). Default: never. */
  protected shouldSkip(_context: ExecutionContext): boolean | Promise<boolean> {
    return false;
  }

  /**
   * Where the request and response come from: HTTP, or `req`/`res` of the GraphQL context.
   * Override for other transports or a custom GraphQL context shape.
   */
  protected getRequestResponse(context: ExecutionContext): { request: HttpRequestLike; response: HttpResponseLike } {
    return requestResponseOf(context);
  }

  /**
   * The client address recorded in audit rows and used for flood limits and client binding.
   * Default: what the framework resolved, so Express `trust proxy` and Fastify `trustProxy`
   * decide which forwarding headers count. Override only to read a header that a proxy you
   * control always sets (never trust a client-supplied header by default).
   */
  protected getClientIp(request: HttpRequestLike): string | undefined {
    return frameworkClientIp(request);
  }

  protected throwUnauthorized(reason: SessionFailureReason): never {
    throw new UnauthorizedException({ statusCode: 401, error: 'Unauthorized', message: MESSAGES[reason], reason });
  }

  /** The validator already set Retry-After; no session (not even an optional one) is looked up. */
  protected throwTooManyInvalidTokens(): never {
    const reason: SessionFailureReason = 'too_many_invalid_tokens';
    throw new HttpException(
      { statusCode: 429, error: 'Too Many Requests', message: MESSAGES[reason], reason },
      HttpStatus.TOO_MANY_REQUESTS,
    );
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
  second_factor_required: 'This session waits for its second factor: complete the login first',
};
