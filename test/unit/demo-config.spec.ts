import { describe, expect, it } from '@jest/globals';
import { DemoConfigError, loadDemoConfig } from '../../src/demo/demo-config.js';

describe('demo configuration: request bound and password limits', () => {
  const load = (env: Record<string, string>) => loadDemoConfig(env, 'postgres://x');

  it('defaults: 30 s per request, 30 password attempts a minute per address, 10 failures per account in 15 minutes', () => {
    expect(load({})).toMatchObject({
      requestTimeoutMs: 30_000,
      loginRateLimit: 30,
      accountRateLimit: 10,
      accountRateWindowMs: 15 * 60_000,
    });
  });

  it('reads REQUEST_TIMEOUT, ACCOUNT_RATE_LIMIT and ACCOUNT_RATE_WINDOW as given', () => {
    expect(load({ REQUEST_TIMEOUT: '2s', ACCOUNT_RATE_LIMIT: '0', ACCOUNT_RATE_WINDOW: '1h' })).toMatchObject({
      requestTimeoutMs: 2_000,
      accountRateLimit: 0,
      accountRateWindowMs: 3_600_000,
    });
    expect(load({ REQUEST_TIMEOUT: '1500' }).requestTimeoutMs).toBe(1_500);
  });

  it.each([
    ['REQUEST_TIMEOUT', '0'],
    ['REQUEST_TIMEOUT', '10 minutes'],
    ['REQUEST_TIMEOUT', '999ms'],
    ['ACCOUNT_RATE_WINDOW', 'soon'],
    ['ACCOUNT_RATE_LIMIT', '-1'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(() => load({ [name]: value })).toThrow(DemoConfigError);
    expect(() => load({ [name]: value })).toThrow(name);
  });
});

describe('demo configuration: SESSION_PREPARED_STATEMENTS', () => {
  const load = (env: Record<string, string>) => loadDemoConfig(env, 'postgres://x');

  it("is on by default; 'off' (behind a transaction pooler) turns the named statements off", () => {
    expect(load({}).session.preparedStatements).toBeUndefined(); // the module's default: true
    expect(load({ SESSION_PREPARED_STATEMENTS: 'on' }).session.preparedStatements).toBe(true);
    expect(load({ SESSION_PREPARED_STATEMENTS: 'off' }).session.preparedStatements).toBe(false);
  });

  it.each(['false', 'no', '0', 'OFF'])('refuses SESSION_PREPARED_STATEMENTS=%s, naming the variable', (value) => {
    expect(() => load({ SESSION_PREPARED_STATEMENTS: value })).toThrow(
      `SESSION_PREPARED_STATEMENTS must be 'on' or 'off', got '${value}'`,
    );
  });
});

describe('demo configuration: SESSION_ENCRYPTION_KEYS', () => {
  const load = (env: Record<string, string>) => loadDemoConfig(env, 'postgres://x');
  const [a, b] = ['A'.repeat(43) + '=', 'B'.repeat(43) + '='];

  it('is off when unset; id:key pairs, newest first, become encryption.keys', () => {
    expect(load({}).session.encryption).toBeUndefined();
    expect(load({ SESSION_ENCRYPTION_KEYS: `2026-12:${a}, 2026-06:${b}` }).session.encryption).toEqual({
      keys: [
        { id: '2026-12', key: a },
        { id: '2026-06', key: b },
      ],
    });
  });

  it('refuses an entry without an id, naming the entry and not the key', () => {
    const load2 = () => load({ SESSION_ENCRYPTION_KEYS: `2026-12:${a},${b}` });
    expect(load2).toThrow(DemoConfigError);
    expect(load2).toThrow('SESSION_ENCRYPTION_KEYS: entry 2 must be id:base64key');
    expect(() => load2()).not.toThrow(b);
  });
});
