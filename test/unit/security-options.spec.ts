import { describe, expect, it } from '@jest/globals';
import { RequireFreshSession } from '../../src/session/decorators/security.decorators.js';
import {
  resolveSessionOptions,
  SessionOptionsError,
  type SessionModuleOptions,
} from '../../src/session/session.options.js';
import { loadDemoConfig, DemoConfigError } from '../../src/demo/demo-config.js';

function problem(input: unknown): string {
  try {
    resolveSessionOptions(input as SessionModuleOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(SessionOptionsError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('security options', () => {
  it('resolve with safe defaults: CSRF on, flood limit on, no session limit, 5 minute step-up, client changes audited', () => {
    const resolved = resolveSessionOptions({});
    expect(resolved.csrf).toEqual({
      enabled: true,
      headerName: 'x-csrf-token',
      cookieName: '__Host-csrf',
      allowedOrigins: undefined,
    });
    expect(resolved.flood).toEqual({ limit: 100, windowMs: 60_000, maxSources: 10_000 });
    expect(resolved.sessionLimit).toBeUndefined();
    expect(resolved.stepUp).toEqual({ maxAgeMs: 300_000 });
    expect(resolved.clientBinding).toEqual({ audit: true, rejectOnUserAgentChange: false });
  });

  it('resolve given values, durations in ms, header names lower-cased', () => {
    const resolved = resolveSessionOptions({
      csrf: { headerName: 'X-XSRF-TOKEN', cookieName: 'XSRF-TOKEN', allowedOrigins: ['https://app.example.com'] },
      flood: { limit: 0, window: '30s', maxSources: 50 },
      sessionLimit: { maxSessionsPerUser: 5, policy: 'reject' },
      stepUp: { maxAge: '10m' },
      clientBinding: { audit: false, rejectOnUserAgentChange: true },
    });
    expect(resolved.csrf).toEqual({
      enabled: true,
      headerName: 'x-xsrf-token',
      cookieName: 'XSRF-TOKEN',
      allowedOrigins: ['https://app.example.com'],
    });
    expect(resolved.flood).toEqual({ limit: 0, windowMs: 30_000, maxSources: 50 });
    expect(resolved.sessionLimit).toEqual({ maxSessionsPerUser: 5, policy: 'reject' });
    expect(resolved.stepUp.maxAgeMs).toBe(600_000);
    expect(resolveSessionOptions({ sessionLimit: { maxSessionsPerUser: 2 } }).sessionLimit).toEqual({
      maxSessionsPerUser: 2,
      policy: 'evict-oldest',
    });
  });

  it('derive the CSRF cookie name from the session cookie prefix', () => {
    expect(resolveSessionOptions({ cookie: { name: 'sid', secure: false } }).csrf.cookieName).toBe('csrf');
    expect(resolveSessionOptions({ cookie: { name: '__Secure-sid', domain: 'example.com' } }).csrf.cookieName).toBe(
      '__Secure-csrf',
    );
    expect(resolveSessionOptions({ csrf: { cookieName: false } }).csrf.cookieName).toBe(false);
  });

  it.each([
    [{ csrf: { allowedOrigins: ['https://app.example.com/'] } }, 'csrf.allowedOrigins'],
    [{ csrf: { allowedOrigins: ['https://app.example.com/path'] } }, 'csrf.allowedOrigins'],
    [{ csrf: { allowedOrigins: ['null'] } }, 'csrf.allowedOrigins'],
    [{ csrf: { allowedOrigins: ['*'] } }, 'csrf.allowedOrigins'],
    [{ csrf: { allowedOrigins: ['HTTPS://APP.EXAMPLE.COM'] } }, 'csrf.allowedOrigins'],
    [{ csrf: { allowedOrigins: ['ftp://app.example.com'] } }, 'csrf.allowedOrigins'],
    [{ csrf: { allowedOrigins: [] } }, 'csrf.allowedOrigins'],
    [{ csrf: { allowedOrigins: 'https://app.example.com' } }, 'csrf.allowedOrigins'],
    [{ csrf: { headerName: 'x csrf' } }, 'csrf.headerName'],
    [{ csrf: { cookieName: 'a;b' } }, 'csrf.cookieName'],
    [{ csrf: { cookieName: true } }, 'csrf.cookieName'],
    [{ csrf: { enabled: 'yes' } }, 'csrf.enabled'],
    [{ csrf: { secret: 'x' } }, 'csrf.secret'],
    [{ flood: { limit: -1 } }, 'flood.limit'],
    [{ flood: { limit: 1.5 } }, 'flood.limit'],
    [{ flood: { window: '0s' } }, 'flood.window'],
    [{ flood: { window: 'soon' } }, 'flood.window'],
    [{ flood: { maxSources: 0 } }, 'flood.maxSources'],
    [{ sessionLimit: { maxSessionsPerUser: 0 } }, 'sessionLimit.maxSessionsPerUser'],
    [{ sessionLimit: { policy: 'reject' } }, 'sessionLimit.maxSessionsPerUser'],
    [{ sessionLimit: { maxSessionsPerUser: 3, policy: 'evict-newest' } }, 'sessionLimit.policy'],
    [{ stepUp: { maxAge: 0 } }, 'stepUp.maxAge'],
    [{ clientBinding: { rejectOnUserAgentChange: 1 } }, 'clientBinding.rejectOnUserAgentChange'],
  ])('reject %j naming %s', (input, option) => {
    expect(problem(input)).toMatch(new RegExp(`^\\s+- ${option.replace(/\./g, '\\.')}: `, 'm'));
  });

  it.each([
    [{ cookie: { name: 'sid', secure: false }, csrf: { cookieName: '__Host-csrf' } }, /__Host-csrf.*secure/],
    [{ cookie: { name: 'sid', secure: false }, csrf: { cookieName: '__Secure-csrf' } }, /__Secure-csrf.*secure/],
    [{ csrf: { cookieName: '__host-csrf' } }, /looks like a cookie prefix/],
    [{ csrf: { cookieName: '__Host-sid' } }, /differ from the session cookie/],
  ])('refuse a CSRF cookie name the browser would drop or confuse: %j', (input, message) => {
    expect(problem(input)).toMatch(message);
  });
});

describe('@RequireFreshSession', () => {
  it('refuses a bad max age when the class is defined, not at request time', () => {
    expect(() => RequireFreshSession('soon')).toThrow(TypeError);
    expect(() => RequireFreshSession(0)).toThrow(TypeError);
    expect(() => RequireFreshSession('-5m')).toThrow(TypeError);
    expect(() => RequireFreshSession('5m')).not.toThrow();
    expect(() => RequireFreshSession()).not.toThrow();
  });
});

describe('demo security configuration', () => {
  it('reads the documented variables', () => {
    const config = loadDemoConfig(
      {
        PORT: '4000',
        SESSION_MAX_PER_USER: '3',
        SESSION_LIMIT_POLICY: 'reject',
        SESSION_FRESH_AGE: '2m',
        SESSION_FLOOD_LIMIT: '7',
        SESSION_FLOOD_WINDOW: '10s',
        SESSION_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
      },
      'postgres://x',
    );
    expect(config.session).toMatchObject({
      sessionLimit: { maxSessionsPerUser: 3, policy: 'reject' },
      stepUp: { maxAge: '2m' },
      flood: { limit: 7, window: '10s' },
      csrf: { allowedOrigins: ['https://a.example', 'https://b.example'] },
    });
    expect(resolveSessionOptions(config.session).sessionLimit).toEqual({ maxSessionsPerUser: 3, policy: 'reject' });
  });

  it("allows the demo's own origins by default", () => {
    expect(loadDemoConfig({ PORT: '4000' }, 'postgres://x').session.csrf).toEqual({
      allowedOrigins: ['http://localhost:4000', 'http://127.0.0.1:4000'],
    });
  });

  it('refuses a limit policy without a limit, and bad values through the module validation', () => {
    expect(() => loadDemoConfig({ SESSION_LIMIT_POLICY: 'reject' }, 'postgres://x')).toThrow(DemoConfigError);
    expect(() => loadDemoConfig({ SESSION_FLOOD_LIMIT: 'lots' }, 'postgres://x')).toThrow(DemoConfigError);
    expect(() =>
      resolveSessionOptions(
        loadDemoConfig({ SESSION_MAX_PER_USER: '2', SESSION_LIMIT_POLICY: 'oldest' }, 'postgres://x').session,
      ),
    ).toThrow(/sessionLimit\.policy/);
    expect(() =>
      resolveSessionOptions(loadDemoConfig({ SESSION_ALLOWED_ORIGINS: 'app.example.com' }, 'postgres://x').session),
    ).toThrow(/csrf\.allowedOrigins/);
  });
});
