import { describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { SkipCsrf } from '../../src/session/csrf/csrf.decorator.js';
import { OptionalSession, Public } from '../../src/session/decorators/session.decorators.js';
import { RouteFlagsMemo } from '../../src/session/guards/route-flags.js';

const contextOf = (controller: object, handler: object) =>
  ({ getHandler: () => handler, getClass: () => controller }) as unknown as ExecutionContext;

class Base {
  inherited(): void {}
}
@Public()
class PublicController extends Base {
  plain(): void {}
  @OptionalSession() optional(): void {}
  @SkipCsrf() skipped(): void {}
}
class GuardedController extends Base {
  plain(): void {}
  @Public() open(): void {}
}

describe('RouteFlagsMemo', () => {
  const memo = new RouteFlagsMemo();
  const flags = (controller: { prototype: object }, name: string) =>
    memo.of(new Reflector(), contextOf(controller, (controller.prototype as Record<string, object>)[name]!));

  it('reads @Public, @OptionalSession and @SkipCsrf from the handler, else its class', () => {
    expect(flags(PublicController, 'plain')).toMatchObject({ isPublic: true, optional: false, skipCsrf: false });
    expect(flags(PublicController, 'optional')).toMatchObject({ isPublic: false, optional: true, skipCsrf: false }); // optional wins over public
    expect(flags(PublicController, 'skipped')).toMatchObject({ isPublic: true, optional: false, skipCsrf: true });
    expect(flags(GuardedController, 'plain')).toMatchObject({ isPublic: false, optional: false, skipCsrf: false });
    expect(flags(GuardedController, 'open')).toMatchObject({ isPublic: true, optional: false, skipCsrf: false });
  });

  it('asks the Reflector once per route', () => {
    const reflector = new Reflector();
    let reads = 0;
    const counting = Object.assign(Object.create(reflector) as Reflector, {
      getAllAndOverride: (...args: Parameters<Reflector['getAllAndOverride']>) => (
        reads++,
        reflector.getAllAndOverride(...args)
      ),
    });
    const fresh = new RouteFlagsMemo();
    const context = contextOf(GuardedController, GuardedController.prototype.open);
    const first = fresh.of(counting, context);
    const afterFirst = reads;
    expect(afterFirst).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) expect(fresh.of(counting, context)).toBe(first);
    expect(reads).toBe(afterFirst);
  });

  it('keeps apart one inherited method served by a public and by a guarded controller', () => {
    const inherited = Base.prototype.inherited;
    expect(memo.of(new Reflector(), contextOf(PublicController, inherited)).isPublic).toBe(true);
    expect(memo.of(new Reflector(), contextOf(GuardedController, inherited)).isPublic).toBe(false);
    expect(memo.of(new Reflector(), contextOf(PublicController, inherited)).isPublic).toBe(true);
  });
});
