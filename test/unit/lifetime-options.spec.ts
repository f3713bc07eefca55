import { describe, expect, it } from '@jest/globals';
import {
  resolveSessionOptions,
  SessionOptionsError,
  type SessionModuleOptions,
} from '../../src/session/session.options.js';

const DAY = 86_400_000;

function problems(input: unknown): string[] {
  try {
    resolveSessionOptions(input as SessionModuleOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(SessionOptionsError);
    return (error as Error).message
      .split('\n')
      .slice(1)
      .map((line) => line.replace(/^\s+- /, ''));
  }
  throw new Error('the options were accepted');
}

describe('lifetime profiles (options)', () => {
  it('resolves default, guest and named profiles in ms', () => {
    const o = resolveSessionOptions({ lifetimes: { remember: { idleTimeout: '7d', absoluteTimeout: '30d' } } });
    expect(o.lifetimes.get('remember')).toEqual({
      name: 'remember',
      idleTimeoutMs: 7 * DAY,
      absoluteTimeoutMs: 30 * DAY,
    });
    expect(o.lifetimes.get('default')).toEqual({
      name: 'default',
      idleTimeoutMs: 30 * 60_000,
      absoluteTimeoutMs: 12 * 3_600_000,
    });
    expect(o.lifetimes.get('guest')).toEqual({
      name: 'guest',
      idleTimeoutMs: 20 * 60_000,
      absoluteTimeoutMs: 6 * 3_600_000,
    });
    expect(o.maxIdleTimeoutMs).toBe(30 * DAY);
    expect(o.maxAbsoluteTimeoutMs).toBe(400 * DAY);
  });

  it('refuses a profile beyond the module-wide maxima, naming both options', () => {
    expect(problems({ lifetimes: { remember: { idleTimeout: '60d', absoluteTimeout: '500d' } } })).toEqual([
      "lifetimes.remember.idleTimeout: '60d' is longer than maxIdleTimeout '30d' (default)",
      "lifetimes.remember.absoluteTimeout: '500d' is longer than maxAbsoluteTimeout '400d' (default)",
    ]);
    expect(
      problems({ maxAbsoluteTimeout: '14d', lifetimes: { remember: { idleTimeout: '7d', absoluteTimeout: '30d' } } }),
    ).toEqual(["lifetimes.remember.absoluteTimeout: '30d' is longer than maxAbsoluteTimeout '14d'"]);
  });

  it('refuses bad names, missing or bad timeouts, unknown keys and reserved names', () => {
    const found = problems({
      lifetimes: {
        remember: { idleTimeout: '7d' },
        'two words': { idleTimeout: '1h', absoluteTimeout: '2h' },
        constructor: { idleTimeout: '1h', absoluteTimeout: '2h' },
        kiosk: 'short',
        shared: { idleTimeout: '1h', absoluteTimeout: '2h', extra: 1 },
        default: { idleTimeout: '1h', absoluteTimeout: '2h' },
      },
    });
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^lifetimes\.remember\.absoluteTimeout: must be a positive duration/),
        expect.stringMatching(/^lifetimes\.two words: must be a profile name/),
        expect.stringMatching(/^lifetimes\.constructor: must be a profile name/),
        expect.stringMatching(/^lifetimes\.kiosk: must be an object/),
        'lifetimes.shared.extra: property extra should not exist',
      ]),
    );
    expect(problems({ lifetimes: { default: { idleTimeout: '1h', absoluteTimeout: '2h' } } })).toEqual([
      'lifetimes.default: is a reserved name: set idleTimeout and absoluteTimeout instead',
    ]);
    expect(problems({ lifetimes: [] })[0]).toMatch(/^lifetimes: must be an object of named groups/);
  });

  it('refuses a profile whose idle timeout exceeds its absolute one or is not longer than a touch', () => {
    expect(problems({ lifetimes: { kiosk: { idleTimeout: '2h', absoluteTimeout: '1h' } } })).toEqual([
      "lifetimes.kiosk.idleTimeout: '2h' must not exceed lifetimes.kiosk.absoluteTimeout '1h'",
    ]);
    expect(problems({ lifetimes: { kiosk: { idleTimeout: '30s', absoluteTimeout: '1h' } } })).toEqual([
      "lifetimes.kiosk.idleTimeout: '30s' must be longer than touchInterval '1m' (default), or activity would never extend it",
    ]);
  });

  it('checks the guest profile against the maxima only when guests are on', () => {
    expect(() => resolveSessionOptions({ maxAbsoluteTimeout: '12h', guests: { absoluteTimeout: '1d' } })).not.toThrow();
    expect(problems({ maxAbsoluteTimeout: '12h', guests: { enabled: true, absoluteTimeout: '1d' } })).toEqual([
      "guests.absoluteTimeout: '1d' is longer than maxAbsoluteTimeout '12h'",
    ]);
    expect(problems({ absoluteTimeout: '4h', maxAbsoluteTimeout: '5h', guests: { enabled: true } })).toEqual([
      "guests.absoluteTimeout: '6h' (default) is longer than maxAbsoluteTimeout '5h'",
    ]);
    expect(problems({ guests: { enabled: true, idleTimeout: '7h', createLimit: -1 } })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^guests\.createLimit: must be an integer from 0/)]),
    );
  });

  it('bounds the module-wide pair by the maxima too', () => {
    expect(problems({ idleTimeout: '31d', absoluteTimeout: '60d' })).toEqual([
      "idleTimeout: '31d' is longer than maxIdleTimeout '30d' (default)",
    ]);
  });
});
