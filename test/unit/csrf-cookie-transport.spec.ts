import { describe, expect, it } from '@jest/globals';
import { CsrfCookieTransport } from '../../src/session/csrf/csrf-cookie.transport.js';
import { csrfTokenFor } from '../../src/session/csrf/csrf-token.js';
import { assertCookieFits, CookieTransport, MAX_COOKIE_BYTES } from '../../src/session/transport/cookie.transport.js';
import { generateToken } from '../../src/session/token/session-token.js';

const COOKIE = { name: '__Host-sid', secure: true, sameSite: 'lax' as const, path: '/' };

/** An Express-shaped response that records headers. */
function response() {
  const headers: Array<[string, string]> = [];
  return {
    headers,
    append: (name: string, value: string) => headers.push([name, value]),
    setHeader: (name: string, value: string) => headers.push([name, value]),
  };
}

const setCookies = (res: ReturnType<typeof response>) =>
  res.headers.filter(([name]) => name === 'Set-Cookie').map(([, value]) => value);

describe('CsrfCookieTransport', () => {
  const transport = new CsrfCookieTransport(new CookieTransport(COOKIE), COOKIE, '__Host-csrf');

  it('writes the CSRF token of the new session token next to it, readable by scripts, same scope', () => {
    const res = response();
    const token = generateToken();
    transport.write(res, token, 3_600_000);
    const [session, csrf] = setCookies(res);
    expect(session).toMatch(new RegExp(`^__Host-sid=${token}; .*HttpOnly`));
    expect(csrf).toBe(`__Host-csrf=${csrfTokenFor(token)}; Max-Age=3600; Path=/; Secure; SameSite=Lax`);
  });

  it('clears both cookies together, and reads only the session cookie', () => {
    const res = response();
    transport.clear(res);
    expect(setCookies(res).map((line) => line.split(';')[0])).toEqual(['__Host-sid=', '__Host-csrf=']);
    const token = generateToken();
    expect(transport.read({ headers: { cookie: `__Host-csrf=${csrfTokenFor(token)}` } })).toEqual({ kind: 'none' });
    expect(transport.read({ headers: { cookie: `__Host-sid=${token}; __Host-csrf=x` } })).toEqual({
      kind: 'token',
      token,
    });
  });
});

describe('cookie size on write (ASVS 3.3.5)', () => {
  it('refuses to write a cookie whose name + value exceed 4096 bytes, counting bytes not characters', () => {
    expect(() => assertCookieFits('n', 'v'.repeat(MAX_COOKIE_BYTES - 1))).not.toThrow();
    expect(() => assertCookieFits('n', 'v'.repeat(MAX_COOKIE_BYTES))).toThrow(RangeError);
    expect(() => assertCookieFits('n', 'é'.repeat(2_048))).toThrow(/4097 bytes/);
  });
});
