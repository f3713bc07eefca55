import { describe, expect, it } from '@jest/globals';
import { formatDuration, parseDuration } from '../../src/session/duration.js';
import {
  resolveSessionOptions,
  SessionOptionsError,
  type ResolvedSessionOptions,
  type SessionModuleOptions,
} from '../../src/session/session.options.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Resolves options that must be rejected; returns the error so a test can read its message. */
function rejected(input: unknown): SessionOptionsError {
  let thrown: unknown;
  try {
    resolveSessionOptions(input as SessionModuleOptions);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(SessionOptionsError);
  const error = thrown as SessionOptionsError;
  expect(error.name).toBe('SessionOptionsError');
  return error;
}

/** The message holds one "  - <option path>: <problem>" line per bad option. */
function problemLine(option: string): RegExp {
  return new RegExp(`^\\s+- ${option.replace(/[.]/g, '\\.')}: `, 'm');
}

function expectRejected(input: unknown, option: string, ...mentions: string[]): SessionOptionsError {
  const error = rejected(input);
  expect(error.message).toMatch(problemLine(option));
  for (const mention of mentions) expect(error.message).toContain(mention);
  return error;
}

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [1_500, 1_500],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ['500ms', 500],
    ['3s', 3_000],
    ['30s', 30_000],
    ['30m', 30 * MINUTE],
    ['12h', 12 * HOUR],
    ['7d', 7 * 24 * HOUR],
    ['0s', 0],
    [' 30m ', 30 * MINUTE],
    ['30 m', 30 * MINUTE],
    ['1500', 1_500],
    ['0', 0],
  ])('parses %p as %p ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each([
    ['a negative number', -1],
    ['negative zero spelled as a string', '-0s'],
    ['a fraction', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['an unsafe integer', Number.MAX_SAFE_INTEGER + 1],
    ['an empty string', ''],
    ['blank', '   '],
    ['garbage', 'soon'],
    ['a negative string', '-5s'],
    ['a fractional string', '1.5h'],
    ['an upper-case unit', '30M'],
    ['a spelled-out unit', '30 minutes'],
    ['an unknown unit', '5w'],
    ['a unit without a number', 'ms'],
    ['two durations', '3s3s'],
    ['exponent notation', '1e3'],
    ['hex', '0x10'],
    ['a fractional digit string', '1500.5'],
    ['non-ASCII digits', '\u0663\u0660m'],
    ['a digit string past MAX_SAFE_INTEGER', '9007199254740993'],
    ['a product past MAX_SAFE_INTEGER', '999999999999999d'],
    ['null', null],
    ['undefined', undefined],
    ['a boolean', true],
    ['an object', { ms: 5 }],
    ['an array', ['30m']],
    ['a boxed number', Object(5)],
    ['a bigint', 5n],
  ])('rejects %s', (_, input) => {
    expect(parseDuration(input)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [12 * HOUR, '12h'],
    [90_000, '90s'],
    [30 * MINUTE, '30m'],
    [90 * 24 * HOUR, '90d'],
    [1_500, '1500ms'],
    [12 * HOUR + 1, '43200001ms'],
    [0, '0ms'],
  ])('writes %p ms as %p, which parses back', (ms, written) => {
    expect(formatDuration(ms)).toBe(written);
    expect(parseDuration(written)).toBe(ms);
  });
});

describe('the option types', () => {
  it('take plain object literals, as before they were schema classes (checked by tsc)', () => {
    const options: SessionModuleOptions = {
      idleTimeout: '30m',
      absoluteTimeout: 12 * HOUR,
      cookie: { name: 'sid', secure: false },
      purge: { auditRetention: false },
      sessionLimit: { maxSessionsPerUser: 3 },
      admin: { enabled: true, authorize: async () => true },
    };
    expect(resolveSessionOptions(options).sessionLimit).toEqual({ maxSessionsPerUser: 3, policy: 'evict-oldest' });
  });
});

describe('resolveSessionOptions defaults', () => {
  const defaults: ResolvedSessionOptions = {
    idleTimeoutMs: 30 * MINUTE,
    absoluteTimeoutMs: 12 * HOUR,
    lifetimes: new Map([
      ['default', { name: 'default', idleTimeoutMs: 30 * MINUTE, absoluteTimeoutMs: 12 * HOUR }],
      ['guest', { name: 'guest', idleTimeoutMs: 20 * MINUTE, absoluteTimeoutMs: 6 * HOUR }],
    ]),
    maxIdleTimeoutMs: 30 * 24 * HOUR,
    maxAbsoluteTimeoutMs: 400 * 24 * HOUR,
    guests: {
      enabled: false,
      idleTimeoutMs: 20 * MINUTE,
      absoluteTimeoutMs: 6 * HOUR,
      maxDataBytes: 4_096,
      createLimit: 30,
      createWindowMs: 10 * MINUTE,
    },
    touchIntervalMs: 60_000,
    rotationIntervalMs: 15 * MINUTE,
    rotationGraceMs: 30_000,
    transport: 'cookie',
    cookie: { name: '__Host-sid', secure: true, sameSite: 'lax', domain: undefined, path: '/' },
    bearerRotationHeader: 'session-token',
    maxDataBytes: 65_536,
    preparedStatements: true,
    purge: { enabled: true, cron: '*/5 * * * *', batchSize: 5_000, dutyCycle: 0.1, auditRetentionMs: 90 * 24 * HOUR },
    admin: { enabled: false, authorize: undefined, path: 'admin' },
    cache: { enabled: false, maxEntries: 10_000, ttlMs: 5_000, notify: false },
    metrics: { enabled: false, prefix: 'nest_pg_session_' },
    csrf: { enabled: true, headerName: 'x-csrf-token', cookieName: '__Host-csrf', allowedOrigins: undefined },
    flood: { limit: 100, windowMs: MINUTE, maxSources: 10_000 },
    sessionLimit: undefined,
    stepUp: { maxAgeMs: 5 * MINUTE },
    clientBinding: { audit: true, rejectOnUserAgentChange: false },
    sockets: { enabled: false, recheckIntervalMs: 10_000 },
    impersonation: { enabled: false, maxDurationMs: 60 * MINUTE },
    privacy: { personalDataRetentionMs: 30 * 24 * HOUR },
    encryption: undefined,
    secondFactor: {
      pendingTimeoutMs: 5 * MINUTE,
      maxAttempts: 5,
      userFailureLimit: 10,
      userFailureWindowMs: 15 * MINUTE,
      maxPendingPerUser: 3,
    },
  };

  it('fill in NIST AAL2 timeouts and a __Host- cookie when nothing is given', () => {
    expect(resolveSessionOptions()).toEqual(defaults);
    expect(resolveSessionOptions({})).toEqual(defaults);
    expect(resolveSessionOptions({}).cookie.domain).toBeUndefined();
  });

  it('fill in the cookie defaults when only part of the cookie is given', () => {
    expect(resolveSessionOptions({ cookie: {} }).cookie).toEqual(defaults.cookie);
    expect(resolveSessionOptions({ cookie: { sameSite: 'strict' } }).cookie).toEqual({
      ...defaults.cookie,
      sameSite: 'strict',
    });
  });

  it.each([
    ['30m', 60_000], // 3 min would be idle/10: capped at 60 s
    ['10m', 60_000], // exactly 60 s
    ['5m', 30_000], // idle/10
    ['1m', 6_000],
    [999, 99], // floored to whole ms
  ])('derive touchInterval = min(60s, idle/10) for idleTimeout %p', (idleTimeout, touch) => {
    expect(resolveSessionOptions({ idleTimeout }).touchIntervalMs).toBe(touch);
  });

  it('keep an explicit touchInterval instead of the derived one', () => {
    expect(resolveSessionOptions({ idleTimeout: '5m', touchInterval: '2m' }).touchIntervalMs).toBe(2 * MINUTE);
  });

  it('accept every duration as milliseconds or as a string', () => {
    expect(
      resolveSessionOptions({
        idleTimeout: '20m',
        absoluteTimeout: '8h',
        touchInterval: '500ms',
        rotationInterval: '3s',
        rotationGrace: '1s',
      }),
    ).toMatchObject({
      idleTimeoutMs: 20 * MINUTE,
      absoluteTimeoutMs: 8 * HOUR,
      touchIntervalMs: 500,
      rotationIntervalMs: 3_000,
      rotationGraceMs: 1_000,
    });
    expect(
      resolveSessionOptions({
        idleTimeout: 20 * MINUTE,
        absoluteTimeout: 8 * HOUR,
        touchInterval: 500,
        rotationInterval: 3_000,
        rotationGrace: 1_000,
      }),
    ).toMatchObject({
      idleTimeoutMs: 20 * MINUTE,
      absoluteTimeoutMs: 8 * HOUR,
      touchIntervalMs: 500,
      rotationIntervalMs: 3_000,
      rotationGraceMs: 1_000,
    });
  });

  it('allow idleTimeout equal to absoluteTimeout', () => {
    expect(resolveSessionOptions({ idleTimeout: '1h', absoluteTimeout: '60m' })).toMatchObject({
      idleTimeoutMs: HOUR,
      absoluteTimeoutMs: HOUR,
    });
  });

  it('allow 0 to turn rotation off and a 0 grace', () => {
    expect(resolveSessionOptions({ rotationInterval: 0, rotationGrace: '0s' })).toMatchObject({
      rotationIntervalMs: 0,
      rotationGraceMs: 0,
    });
  });

  it.each([0, '0', '0s', '0ms'])('turn rotation off with rotationInterval %p, however 0 is written', (zero) => {
    expect(resolveSessionOptions({ rotationInterval: zero })).toMatchObject({ rotationIntervalMs: 0 });
  });

  it.each(['1ms', 999, '999ms'])('refuse a rotationInterval of %p: above 0 it must be at least 1s', (tooShort) => {
    expect(() => resolveSessionOptions({ rotationInterval: tooShort })).toThrow(/rotationInterval: .*at least '1s'/);
  });

  it('never resolve a rotation grace that outlasts the idle timeout, even when the grace is the default', () => {
    // An explicit grace of 30 s with a 20 s idle timeout is refused (see the errors below);
    // the default grace of 30 s must not slip the same combination past validation.
    let resolved: ResolvedSessionOptions | undefined;
    try {
      resolved = resolveSessionOptions({ idleTimeout: '20s' });
    } catch (error) {
      expect(error).toBeInstanceOf(SessionOptionsError);
      expect((error as Error).message).toMatch(/rotationGrace/);
      return;
    }
    expect(resolved.rotationGraceMs).toBeLessThan(resolved.idleTimeoutMs);
  });

  it('accept a plain-http development cookie and the bearer transport', () => {
    expect(resolveSessionOptions({ cookie: { name: 'sid', secure: false } }).cookie).toEqual({
      name: 'sid',
      secure: false,
      sameSite: 'lax',
      domain: undefined,
      path: '/',
    });
    expect(
      resolveSessionOptions({ cookie: { name: '__Secure-sid', domain: 'example.com', path: '/app' } }).cookie,
    ).toEqual({ name: '__Secure-sid', secure: true, sameSite: 'lax', domain: 'example.com', path: '/app' });
    expect(resolveSessionOptions({ cookie: { sameSite: 'none' } }).cookie.sameSite).toBe('none');
    expect(resolveSessionOptions({ transport: 'bearer', bearerRotationHeader: 'X-Session-Token' })).toMatchObject({
      transport: 'bearer',
      bearerRotationHeader: 'x-session-token',
    });
  });

  it('accept maxDataBytes at both ends of its range', () => {
    expect(resolveSessionOptions({ maxDataBytes: 2 }).maxDataBytes).toBe(2);
    expect(resolveSessionOptions({ maxDataBytes: 1_048_576 }).maxDataBytes).toBe(1_048_576);
  });
});

describe('resolveSessionOptions errors name the bad option', () => {
  it('refuses non-object options', () => {
    for (const input of [null, 'cookie', 42, true]) {
      expect(() => resolveSessionOptions(input as unknown as SessionModuleOptions)).toThrow(SessionOptionsError);
    }
  });

  it('refuses an idleTimeout longer than the absoluteTimeout', () => {
    expectRejected({ idleTimeout: '13h' }, 'idleTimeout', 'absoluteTimeout');
    expectRejected({ idleTimeout: '2h', absoluteTimeout: '1h' }, 'idleTimeout', 'absoluteTimeout');
    expectRejected({ idleTimeout: HOUR + 1, absoluteTimeout: HOUR }, 'idleTimeout', 'absoluteTimeout');
  });

  describe('cookie prefixes (RFC 6265bis), so a browser never silently drops the cookie', () => {
    it("refuses an explicit '__Host-' name without Secure", () => {
      expectRejected({ cookie: { name: '__Host-sid', secure: false } }, 'cookie.name', '__Host-', 'cookie.secure');
    });

    it("refuses the default '__Host-sid' name with cookie.secure: false", () => {
      expectRejected({ cookie: { secure: false } }, 'cookie.name', '__Host-', 'cookie.secure');
    });

    it("refuses secure: false when cookie.name is present but undefined (falls back to '__Host-sid')", () => {
      // e.g. `cookie: { name: process.env.COOKIE_NAME, secure: false }` with the variable unset
      expectRejected({ cookie: { name: undefined, secure: false } }, 'cookie.name', '__Host-', 'cookie.secure');
    });

    it("refuses a '__Host-' cookie with a Domain", () => {
      expectRejected({ cookie: { domain: 'example.com' } }, 'cookie.name', '__Host-', 'cookie.domain');
      expectRejected({ cookie: { name: '__Host-sid', domain: 'example.com' } }, 'cookie.name', 'cookie.domain');
    });

    it("refuses a '__Host-' cookie with a path other than '/'", () => {
      expectRejected({ cookie: { path: '/app' } }, 'cookie.name', '__Host-', 'cookie.path');
      expectRejected({ cookie: { name: '__Host-sid', path: '/app/' } }, 'cookie.name', 'cookie.path');
    });

    it("refuses a '__Secure-' cookie without Secure", () => {
      expectRejected({ cookie: { name: '__Secure-sid', secure: false } }, 'cookie.name', '__Secure-', 'cookie.secure');
    });

    it.each(['__HOST-sid', '__host-sid', '__SECURE-sid', '__secure-sid', '__hOsT-sid'])(
      'refuses the look-alike prefix %s',
      (name) => {
        expectRejected({ cookie: { name } }, 'cookie.name', name);
      },
    );

    it("refuses sameSite 'none' without Secure", () => {
      expectRejected({ cookie: { name: 'sid', sameSite: 'none', secure: false } }, 'cookie.sameSite', 'cookie.secure');
    });

    it('refuses cookie names, domains and paths that cannot be sent as written', () => {
      expectRejected({ cookie: { name: '__Host-sid ' } }, 'cookie.name');
      expectRejected({ cookie: { name: 'my sid' } }, 'cookie.name');
      expectRejected({ cookie: { name: 'sid;x=1' } }, 'cookie.name');
      expectRejected({ cookie: { name: '' } }, 'cookie.name');
      expectRejected({ cookie: { name: 'a'.repeat(65) } }, 'cookie.name');
      expectRejected({ cookie: { name: 'sid', domain: 'example.com; Secure' } }, 'cookie.domain');
      expectRejected({ cookie: { name: 'sid', path: 'app' } }, 'cookie.path');
      expectRejected({ cookie: { name: 'sid', path: '/a;b' } }, 'cookie.path');
      expectRejected({ cookie: { name: 'sid', path: '/a b' } }, 'cookie.path');
    });

    it('refuses bad cookie field types and values', () => {
      expectRejected({ cookie: { secure: 'false' } }, 'cookie.secure');
      expectRejected({ cookie: { sameSite: 'None' } }, 'cookie.sameSite');
      expectRejected({ cookie: { sameSite: 'off' } }, 'cookie.sameSite');
      expectRejected({ cookie: 'sid' }, 'cookie');
    });
  });

  it.each([
    ['idleTimeout', -1],
    ['idleTimeout', Number.NaN],
    ['idleTimeout', 'garbage'],
    ['idleTimeout', '1.5h'],
    ['idleTimeout', 0],
    ['idleTimeout', '0s'],
    ['idleTimeout', Number.POSITIVE_INFINITY],
    ['idleTimeout', true],
    ['absoluteTimeout', -1],
    ['absoluteTimeout', 'forever'],
    ['absoluteTimeout', 0],
    ['touchInterval', 0],
    ['touchInterval', '-1s'],
    ['touchInterval', Number.NaN],
    ['rotationInterval', -1],
    ['rotationInterval', 'hourly'],
    ['rotationInterval', Number.NaN],
    ['rotationGrace', -1],
    ['rotationGrace', '30 seconds'],
    ['rotationGrace', 0.5],
  ])('refuses %s: %p', (option, value) => {
    expectRejected({ [option]: value }, option, 'duration');
  });

  it('impersonation: off by default; maxDuration between 1s and 24h, named when wrong', () => {
    expect(resolveSessionOptions({ impersonation: { enabled: true } }).impersonation).toEqual({
      enabled: true,
      maxDurationMs: HOUR,
    });
    expect(resolveSessionOptions({ impersonation: { maxDuration: '15m' } }).impersonation.maxDurationMs).toBe(
      15 * 60_000,
    );
    for (const bad of [0, '500ms', '25h', 'a while'])
      expectRejected({ impersonation: { maxDuration: bad } }, 'impersonation.maxDuration', 'duration');
    expectRejected({ impersonation: { enabled: 'yes' as never } }, 'impersonation.enabled');
  });

  it('secondFactor: pending sessions live 5m and get 5 attempts by default; bounds named when wrong', () => {
    const perUser = { userFailureLimit: 10, userFailureWindowMs: 15 * 60_000, maxPendingPerUser: 3 };
    expect(resolveSessionOptions({}).secondFactor).toEqual({
      pendingTimeoutMs: 5 * 60_000,
      maxAttempts: 5,
      ...perUser,
    });
    expect(resolveSessionOptions({ secondFactor: { pendingTimeout: '2m', maxAttempts: 3 } }).secondFactor).toEqual({
      pendingTimeoutMs: 2 * 60_000,
      maxAttempts: 3,
      ...perUser,
    });
    expect(
      resolveSessionOptions({ secondFactor: { userFailureLimit: 4, userFailureWindow: '1h', maxPendingPerUser: 1 } })
        .secondFactor,
    ).toMatchObject({ userFailureLimit: 4, userFailureWindowMs: 60 * 60_000, maxPendingPerUser: 1 });
    for (const bad of [0, 1001, 2.5, '5'])
      expectRejected({ secondFactor: { userFailureLimit: bad as never } }, 'secondFactor.userFailureLimit', 'integer');
    for (const bad of [0, '30s', '2d', 'soon'])
      expectRejected({ secondFactor: { userFailureWindow: bad } }, 'secondFactor.userFailureWindow', 'duration');
    for (const bad of [0, 21, '3'])
      expectRejected(
        { secondFactor: { maxPendingPerUser: bad as never } },
        'secondFactor.maxPendingPerUser',
        'integer',
      );
    for (const bad of [0, '10s', '2h', 'soon'])
      expectRejected({ secondFactor: { pendingTimeout: bad } }, 'secondFactor.pendingTimeout', 'duration');
    for (const bad of [0, 21, 2.5, '5'])
      expectRejected({ secondFactor: { maxAttempts: bad as never } }, 'secondFactor.maxAttempts', 'integer');
  });

  it('refuses a touchInterval not shorter than the idle timeout', () => {
    expectRejected({ idleTimeout: '5m', touchInterval: '5m' }, 'touchInterval', 'idleTimeout');
    expectRejected({ idleTimeout: '5m', touchInterval: '6m' }, 'touchInterval', 'idleTimeout');
    expectRejected({ touchInterval: '30m' }, 'touchInterval', 'idleTimeout'); // against the default idle
    expect(resolveSessionOptions({ idleTimeout: '5m', touchInterval: 5 * MINUTE - 1 }).touchIntervalMs).toBe(
      5 * MINUTE - 1,
    );
  });

  it('refuses a rotationGrace not shorter than the idle timeout', () => {
    expectRejected({ idleTimeout: '1m', rotationGrace: '1m' }, 'rotationGrace', 'idleTimeout');
    expectRejected({ idleTimeout: '1m', rotationGrace: '2m' }, 'rotationGrace', 'idleTimeout');
    expectRejected({ rotationGrace: '30m' }, 'rotationGrace', 'idleTimeout'); // against the default idle
    expect(resolveSessionOptions({ idleTimeout: '1m', rotationGrace: 59_999 }).rotationGraceMs).toBe(59_999);
  });

  it('refuses unknown option keys, such as typos', () => {
    expectRejected({ idleTimout: '30m' }, 'idleTimout');
    expectRejected({ idleTimeout: '30m', absolutTimeout: '12h' }, 'absolutTimeout');
    expectRejected({ cookie: { sameSIte: 'lax' } }, 'cookie.sameSIte');
    expectRejected({ cookie: { httpOnly: false } }, 'cookie.httpOnly');
  });

  it('refuses an unknown transport', () => {
    for (const transport of ['header', 'Cookie', 'BEARER', '', 42]) expectRejected({ transport }, 'transport');
  });

  it('refuses a bearerRotationHeader that is not a header name', () => {
    for (const header of ['', 'session token', 'x:y', 'x\r\nSet-Cookie: a=b', '1abc', 'a'.repeat(65)]) {
      expectRejected({ bearerRotationHeader: header }, 'bearerRotationHeader');
    }
  });

  it.each([1, 0, -1, 1.5, 1_048_577, Number.NaN, Number.POSITIVE_INFINITY, '65536'])(
    'refuses maxDataBytes %p',
    (maxDataBytes) => {
      expectRejected({ maxDataBytes }, 'maxDataBytes');
    },
  );

  it('takes preparedStatements: false (behind a transaction pooler) and refuses anything but a boolean', () => {
    expect(resolveSessionOptions({ preparedStatements: false }).preparedStatements).toBe(false);
    for (const preparedStatements of ['off', 'false', 0, 1])
      expectRejected({ preparedStatements }, 'preparedStatements', 'must be true or false');
  });

  it('lists every bad option, not only the first', () => {
    const error = rejected({ idleTimeout: 'x', transport: 'smoke-signal', maxDataBytes: 0, cookie: { secure: 'no' } });
    for (const option of ['idleTimeout', 'transport', 'maxDataBytes', 'cookie.secure']) {
      expect(error.message).toMatch(problemLine(option));
    }
  });

  it('refuses keys every object inherits, which class-validator would let through', () => {
    // Otherwise `__proto__` would hand the cookie a domain that no check has seen.
    expectRejected(JSON.parse('{"cookie": {"__proto__": {"domain": "evil.example"}}}'), 'cookie.__proto__');
    expectRejected(JSON.parse('{"__proto__": {"idleTimeout": "13h"}}'), '__proto__');
    expectRejected({ constructor: 1 }, 'constructor');
    expectRejected({ purge: { hasOwnProperty: 1 } }, 'purge.hasOwnProperty');
  });
});

describe('rotationInterval bounds', () => {
  it('refuses a rotation interval inside the grace window or under a second, naming the option', () => {
    expect(() => resolveSessionOptions({ rotationInterval: '1s', rotationGrace: '1s' })).toThrow(
      /rotationInterval.*rotationGrace/,
    );
    expect(() => resolveSessionOptions({ rotationInterval: '10s' })).toThrow(/rotationInterval/); // default grace 30 s
    expect(() => resolveSessionOptions({ rotationInterval: 1, rotationGrace: 0 })).toThrow(
      /rotationInterval: must be a duration of at least '1s'.*, or 0; got 1/,
    );
    expect(resolveSessionOptions({ rotationInterval: 0 }).rotationIntervalMs).toBe(0);
    expect(resolveSessionOptions({ rotationInterval: '2m', rotationGrace: '30s' }).rotationIntervalMs).toBe(120_000);
  });
});

describe('rules between options, in the terms the options were written in', () => {
  /** The one problem line the options give, without the '  - ' in front. */
  function problems(input: SessionModuleOptions, module?: Parameters<typeof resolveSessionOptions>[1]): string[] {
    let thrown: unknown;
    try {
      resolveSessionOptions(input, module);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(SessionOptionsError);
    const [heading, ...lines] = (thrown as Error).message.split('\n');
    expect(heading).toBe('Invalid SessionModule options:');
    return lines.map((line) => line.replace(/^ {2}- /, ''));
  }

  it.each<[SessionModuleOptions, string]>([
    [{ idleTimeout: '13h' }, "idleTimeout: '13h' must not exceed absoluteTimeout '12h' (default)"],
    [
      { idleTimeout: 12 * HOUR + 1, absoluteTimeout: '12h' },
      "idleTimeout: 43200001 must not exceed absoluteTimeout '12h'",
    ],
    [{ idleTimeout: '5m', touchInterval: '5m' }, "touchInterval: '5m' must be shorter than idleTimeout '5m'"],
    [{ touchInterval: '30m' }, "touchInterval: '30m' must be shorter than idleTimeout '30m' (default)"],
    [{ idleTimeout: '1m', rotationGrace: 60_000 }, "rotationGrace: 60000 must be shorter than idleTimeout '1m'"],
    [
      { idleTimeout: '20s', rotationInterval: '5s' },
      "rotationInterval: '5s' must be 0 (no rotation) or longer than rotationGrace '10s' (default)",
    ],
    [
      { idleTimeout: '1h', rotationGrace: '20m' },
      "rotationInterval: '15m' (default) must be 0 (no rotation) or longer than rotationGrace '20m'",
    ],
    [{ cookie: { secure: false } }, "cookie.name: '__Host-sid' (default) needs cookie.secure: true"],
    [{ cookie: { name: '__Host-x', path: '/app' } }, "cookie.name: '__Host-x' needs cookie.path '/'"],
    [{ cookie: { domain: 'example.com' } }, "cookie.name: '__Host-sid' (default) must not go with a cookie.domain"],
    [{ cookie: { name: '__Secure-x', secure: false } }, "cookie.name: '__Secure-x' needs cookie.secure: true"],
    [
      { cookie: { name: '__host-x' } },
      "cookie.name: '__host-x' looks like a cookie prefix but is not spelled '__Host-' or '__Secure-'",
    ],
    [{ cookie: { name: 'sid', sameSite: 'none', secure: false } }, "cookie.sameSite: 'none' needs cookie.secure: true"],
    [
      { cookie: { name: 'csrf', secure: false } },
      "csrf.cookieName: 'csrf' (default) must differ from the session cookie's name",
    ],
    [
      { cookie: { name: '__Secure-sid' }, csrf: { cookieName: '__Secure-sid' } },
      "csrf.cookieName: '__Secure-sid' must differ from the session cookie's name",
    ],
    [
      { cookie: { name: 'sid', secure: false }, csrf: { cookieName: '__Secure-csrf' } },
      "csrf.cookieName: '__Secure-csrf' needs cookie.secure: true",
    ],
    [
      { cookie: { name: '__Secure-sid', path: '/app' }, csrf: { cookieName: '__Host-csrf' } },
      "csrf.cookieName: '__Host-csrf' needs cookie.path '/'",
    ],
    [{ cache: { enabled: true, notify: false } }, 'cache.notify: cannot be false while cache.enabled is true'],
    [
      { admin: { enabled: true } },
      'admin.authorize: must be a function (session, request) => boolean | Promise<boolean> when admin.enabled is true',
    ],
  ])('%j: %s', (input, problem) => {
    expect(problems(input)).toEqual([problem]);
  });

  it('lists every broken rule', () => {
    expect(problems({ rotationGrace: '30m' })).toEqual([
      "rotationGrace: '30m' must be shorter than idleTimeout '30m' (default)",
      "rotationInterval: '15m' (default) must be 0 (no rotation) or longer than rotationGrace '30m'",
    ]);
  });

  it('checks the rules only once every option is valid on its own', () => {
    expect(problems({ idleTimeout: 'soon', touchInterval: '40m' })).toEqual([
      "idleTimeout: must be a positive duration (milliseconds, or a string like '30s', '30m', '12h'); got 'soon'",
    ]);
  });

  it('accepts an absoluteTimeout under the default idle timeout: the absolute one ends the session first', () => {
    expect(resolveSessionOptions({ absoluteTimeout: '10m' })).toMatchObject({
      idleTimeoutMs: 30 * MINUTE,
      absoluteTimeoutMs: 10 * MINUTE,
    });
  });

  describe('admin given where the module is imported and by an async factory', () => {
    const authorize = () => true;

    it('takes authorize from the factory, enabled and path from where the module is imported', () => {
      const resolved = resolveSessionOptions({ admin: { authorize, path: 'admin' } }, { admin: { enabled: true } });
      expect(resolved.admin).toEqual({ enabled: true, authorize, path: 'admin' });
      expect(
        resolveSessionOptions({ admin: { authorize } }, { admin: { enabled: true, path: '/internal/admin' } }).admin
          .path,
      ).toBe('internal/admin');
    });

    it.each<[SessionModuleOptions['admin'], SessionModuleOptions['admin'], string]>([
      [
        undefined,
        { enabled: true, authorize },
        'admin.enabled: true came from the options factory, but routes are built before it runs: ' +
          'pass admin: { enabled: true } to SessionModule.forRootAsync() beside useFactory',
      ],
      [
        { enabled: true, authorize },
        { enabled: false },
        'admin.enabled: false in the options factory, but true where SessionModule is imported',
      ],
      [
        { enabled: true },
        { authorize, path: 'elsewhere' },
        'admin.path: must be given where SessionModule is imported (beside useFactory), not by the factory',
      ],
    ])('refuses %j beside a factory giving %j', (mounted, fromFactory, problem) => {
      expect(problems({ admin: fromFactory }, { admin: mounted })).toEqual([problem]);
    });
  });
});

describe('the sockets options', () => {
  it('turn NOTIFY on by default, since sockets of every instance close on it', () => {
    expect(resolveSessionOptions({ sockets: { enabled: true } }).cache.notify).toBe(true);
    expect(resolveSessionOptions({}).cache.notify).toBe(false);
    // Behind a pooler in transaction mode: no NOTIFY, the re-check interval bounds the close.
    const o = resolveSessionOptions({ sockets: { enabled: true, recheckInterval: '2s' }, cache: { notify: false } });
    expect(o.cache.notify).toBe(false);
    expect(o.sockets).toEqual({ enabled: true, recheckIntervalMs: 2_000 });
  });

  it.each([['500ms'], ['10m'], [0], ['soon']])('refuse recheckInterval %p (1s .. 5m)', (recheckInterval) => {
    expect(() => resolveSessionOptions({ sockets: { enabled: true, recheckInterval } as never })).toThrow(
      /sockets\.recheckInterval/,
    );
  });
});
