import type { ExecutionContext } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';
import { SKIP_CSRF } from '../csrf/csrf.decorator.js';
import { GUEST_SESSION, OPTIONAL_SESSION, PUBLIC_ROUTE } from '../decorators/session.decorators.js';
import { SECOND_FACTOR_ROUTE } from '../second-factor/second-factor.decorator.js';

/** What a route's decorators (on the handler, else its class) say about sessions. */
export interface RouteFlags {
  /** @Public() and not @OptionalSession(): no session needed, none looked up. */
  readonly isPublic: boolean;
  /** @OptionalSession() or @GuestSession(): a session is looked up, and its absence is no refusal. */
  readonly optional: boolean;
  /** @GuestSession(): a guest's session counts, and a write may start one. */
  readonly guests: boolean;
  /** @SkipCsrf() */
  readonly skipCsrf: boolean;
  /** @SecondFactorRoute(): a session waiting for its second factor counts. */
  readonly secondFactor: boolean;
}

interface KnownRoute extends RouteFlags {
  readonly controller: object;
}

/**
 * The flags of each route, read through the Reflector once and then remembered: decorators
 * have run by the time requests arrive, and the Reflector's lookups (an array and two
 * metadata reads per key) would otherwise run on every request. Keyed by the handler; its
 * class is compared because a method inherited by two controllers is one function.
 */
export class RouteFlagsMemo {
  private readonly known = new WeakMap<object, KnownRoute>();

  of(reflector: Reflector, context: ExecutionContext): RouteFlags {
    const handler = context.getHandler();
    const controller = context.getClass();
    const known = this.known.get(handler);
    if (known?.controller === controller) return known;
    const targets = [handler, controller];
    const guests = reflector.getAllAndOverride<boolean>(GUEST_SESSION, targets) === true;
    const optional = guests || reflector.getAllAndOverride<boolean>(OPTIONAL_SESSION, targets) === true;
    const flags: KnownRoute = {
      controller,
      optional,
      guests,
      isPublic: !optional && reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets) === true,
      skipCsrf: reflector.getAllAndOverride<boolean>(SKIP_CSRF, targets) === true,
      secondFactor: reflector.getAllAndOverride<boolean>(SECOND_FACTOR_ROUTE, targets) === true,
    };
    this.known.set(handler, flags);
    return flags;
  }
}
