import { describe, expect, it } from '@jest/globals';
import type { ResolvedCookieOptions } from '../../src/session/session.options.js';
import { generateToken, TOKEN_LENGTH } from '../../src/session/token/session-token.js';
import { CookieTransport } from '../../src/session/transport/cookie.transport.js';
import type { HttpRequestLike } from '../../src/session/transport/http.js';

const DEFAULT_COOKIE: ResolvedCookieOptions = { name: '__Host-sid', secure: true, sameSite: 'lax', path: '/' };

/** Express shape: `append` adds a header line, `setHeader` replaces. Records which one was used. */
class FakeExpressResponse {
  readonly appended: Array<[string, string]> = [];
  readonly set = new Map<string, string>();
  append(name: string, value: string): this {
    this.appended.push([name, value]);
    return this;
  }
  setHeader(name: string, value: string): this {
    this.set.set(name, value);
    return this;
  }
}

/** Fastify shape: only `header`, which accumulates set-cookie itself. */
class FakeFastifyReply {
  readonly headers: Array<[string, string]> = [];
  header(name: string, value: string): this {
    this.headers.push([name, value]);
    return this;
  }
}

const request = (cookie?: string | string[]): HttpRequestLike => ({ headers: cookie === undefined ? {} : { cookie } });

function transport(cookie: Partial<ResolvedCookieOptions> = {}): CookieTransport {
  return new CookieTransport({ ...DEFAULT_COOKIE, ...cookie });
}

/** A valid token whose first character is `first` (any base64url character may start a token). */
function tokenStartingWith(first: string): string {
  return `${first}${generateToken().slice(1)}`;
}

function attributes(setCookie: string): { pair: string; attrs: Map<string, string | true> } {
  const [pair, ...rest] = setCookie.split(';').map((part) => part.trim());
  const attrs = new Map<string, string | true>();
  for (const part of rest) {
    const eq = part.indexOf('=');
    const key = (eq === -1 ? part : part.slice(0, eq)).toLowerCase();
    expect(attrs.has(key)).toBe(false); // no attribute twice
    attrs.set(key, eq === -1 ? true : part.slice(eq + 1));
  }
  return { pair: pair!, attrs };
}

function setCookiesOf(response: FakeExpressResponse | FakeFastifyReply): string[] {
  const lines = response instanceof FakeExpressResponse ? response.appended : response.headers;
  return lines.filter(([name]) => name.toLowerCase() === 'set-cookie').map(([, value]) => value);
}

function cacheControlOf(response: FakeExpressResponse | FakeFastifyReply): string | undefined {
  if (response instanceof FakeExpressResponse) {
    return [...response.set].find(([name]) => name.toLowerCase() === 'cache-control')?.[1];
  }
  return response.headers.find(([name]) => name.toLowerCase() === 'cache-control')?.[1];
}

describe('CookieTransport.read', () => {
  const cookies = transport();

  it('is a cookie transport (so CSRF protection applies)', () => {
    expect(cookies.kind).toBe('cookie');
  });

  it('finds nothing without a Cookie header or without our cookie', () => {
    expect(cookies.read(request())).toEqual({ kind: 'none' });
    expect(cookies.read(request(''))).toEqual({ kind: 'none' });
    expect(cookies.read(request('theme=dark; lang=en'))).toEqual({ kind: 'none' });
    expect(cookies.read({ headers: { cookie: undefined } })).toEqual({ kind: 'none' });
  });

  it('reads a valid token, alone or among other cookies', () => {
    const token = generateToken();
    expect(cookies.read(request(`__Host-sid=${token}`))).toEqual({ kind: 'token', token });
    expect(cookies.read(request(`theme=dark; __Host-sid=${token}; lang=en`))).toEqual({ kind: 'token', token });
    expect(cookies.read(request(`theme=dark;__Host-sid=${token}`))).toEqual({ kind: 'token', token });
  });

  it('reads the cookie name configured, not a hard-coded one', () => {
    const token = generateToken();
    const custom = transport({ name: 'app_session' });
    expect(custom.read(request(`app_session=${token}`))).toEqual({ kind: 'token', token });
    expect(custom.read(request(`__Host-sid=${token}`))).toEqual({ kind: 'none' });
  });

  it.each([
    ['empty', ''],
    ['one character short', 'A'.repeat(TOKEN_LENGTH - 1)],
    ['one character long', 'A'.repeat(TOKEN_LENGTH + 1)],
    ['standard base64 alphabet', `${'A'.repeat(41)}+A`],
    ['slash', `${'A'.repeat(41)}/A`],
    ['padding', `${'A'.repeat(42)}=`],
    ['non-canonical last character', `${'A'.repeat(42)}B`],
    ['double-quoted', `"${'A'.repeat(TOKEN_LENGTH)}"`],
    ['a dot', `${'A'.repeat(21)}.${'A'.repeat(21)}`],
    ['non-ASCII', `${'A'.repeat(41)}\u00e9A`],
    ['SQL', `'OR'1'='1${'A'.repeat(34)}`],
  ])('calls a %s value malformed', (_, value) => {
    expect(cookies.read(request(`__Host-sid=${value}`))).toEqual({ kind: 'malformed' });
  });

  it('never percent-decodes: the encoded spelling of a valid token is not that token', () => {
    const token = tokenStartingWith('J');
    const upperEscaped = `%4A${token.slice(1)}`;
    const lowerEscaped = `%4a${token.slice(1)}`;
    const allEscaped = [...token].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('');
    for (const spelling of [upperEscaped, lowerEscaped, allEscaped]) {
      expect(decodeURIComponent(spelling)).toBe(token); // what a default cookie parser would hand over
      expect(cookies.read(request(`__Host-sid=${spelling}`))).toEqual({ kind: 'malformed' });
    }
    // and the control: the token itself is read
    expect(cookies.read(request(`__Host-sid=${token}`))).toEqual({ kind: 'token', token });
  });

  it('refuses duplicate session cookies (cookie tossing), whichever comes first', () => {
    const ours = generateToken();
    const planted = generateToken();
    expect(cookies.read(request(`__Host-sid=${ours}; __Host-sid=${planted}`))).toEqual({ kind: 'malformed' });
    expect(cookies.read(request(`__Host-sid=${planted}; a=1; __Host-sid=${ours}`))).toEqual({ kind: 'malformed' });
    expect(cookies.read(request(`__Host-sid=${ours}; __Host-sid=${ours}`))).toEqual({ kind: 'malformed' });
    expect(cookies.read(request(`__Host-sid=${ours};__Host-sid=garbage`))).toEqual({ kind: 'malformed' });
    expect(cookies.read(request(`__Host-sid=garbage; __Host-sid=${ours}`))).toEqual({ kind: 'malformed' });
  });

  it('refuses duplicates even when the second copy is padded with whitespace', () => {
    const ours = generateToken();
    const planted = generateToken();
    expect(cookies.read(request(`__Host-sid=${ours};   __Host-sid =${planted}`))).toEqual({ kind: 'malformed' });
    expect(cookies.read(request(`__Host-sid=${ours};\t__Host-sid=${planted}`))).toEqual({ kind: 'malformed' });
  });

  it.each([
    ['upper-case prefix', '__HOST-sid'],
    ['lower-case prefix', '__host-sid'],
    ['no prefix', 'sid'],
    ['__Secure- prefix', '__Secure-sid'],
    ['a suffix', '__Host-sidx'],
    ['a shorter name', '__Host-si'],
    ['a leading character', 'x__Host-sid'],
    ['percent-encoded dash', '__Host%2Dsid'],
    ['percent-encoded underscore', '%5F_Host-sid'],
    ['no-break space after the name', '__Host-sid\u00a0'],
    ['no-break space before the name', '\u00a0__Host-sid'],
    ['UTF-8 no-break space read as latin1', '\u00c2\u00a0__Host-sid'],
    ['a NUL after the name', '__Host-sid\u0000'],
    ['an empty name with the pair as value', ''],
  ])('never reads a look-alike name (%s) as the session', (_, name) => {
    const token = generateToken();
    const header = name === '' ? `=__Host-sid=${token}` : `${name}=${token}`;
    expect(cookies.read(request(header))).not.toEqual(expect.objectContaining({ kind: 'token' }));
    expect(cookies.read(request(header)).kind).toBe('none');
  });

  it('only takes a value from a name=value pair, never from a bare word', () => {
    const token = generateToken();
    expect(cookies.read(request(`__Host-sid; a=${token}`))).toEqual({ kind: 'none' });
    expect(cookies.read(request(`a=__Host-sid=${token}`))).toEqual({ kind: 'none' });
  });

  it('refuses an oversized value without trying to use it', () => {
    const token = generateToken();
    expect(cookies.read(request(`__Host-sid=${token}${'A'.repeat(5_000)}`))).toEqual({ kind: 'malformed' });
    expect(cookies.read(request(`__Host-sid=${'A'.repeat(1_000_000)}`))).toEqual({ kind: 'malformed' });
  });

  it('counts the cookie name into the 4096-byte limit browsers apply', () => {
    const token = generateToken();
    const fits = 'n'.repeat(4096 - TOKEN_LENGTH);
    const tooLong = 'n'.repeat(4096 - TOKEN_LENGTH + 1);
    expect(transport({ name: fits }).read(request(`${fits}=${token}`))).toEqual({ kind: 'token', token });
    expect(transport({ name: tooLong }).read(request(`${tooLong}=${token}`))).toEqual({ kind: 'malformed' });
  });

  describe('header arrays', () => {
    it('reads a one-element array like the plain header', () => {
      const token = generateToken();
      expect(cookies.read(request([`__Host-sid=${token}`]))).toEqual({ kind: 'token', token });
      expect(cookies.read(request([]))).toEqual({ kind: 'none' });
    });

    it('refuses our cookie arriving in two header lines', () => {
      const ours = generateToken();
      const planted = generateToken();
      expect(cookies.read(request([`__Host-sid=${ours}`, `__Host-sid=${planted}`]))).toEqual({ kind: 'malformed' });
      expect(cookies.read(request([`a=1; __Host-sid=${planted}`, `b=2; __Host-sid=${ours}`]))).toEqual({
        kind: 'malformed',
      });
    });

    it('finds our cookie when the Cookie header is split over several lines (RFC 9113 §8.2.3 joins them with "; ")', () => {
      const token = generateToken();
      expect(cookies.read(request(['theme=dark', `__Host-sid=${token}`]))).toEqual({ kind: 'token', token });
      expect(cookies.read(request([`__Host-sid=${token}`, 'theme=dark']))).toEqual({ kind: 'token', token });
    });
  });

  it('never throws on hostile headers', () => {
    for (const header of [
      '=',
      ';',
      ';;;',
      '==',
      '=;=',
      '%',
      '%E0%A4%A',
      '\u0000',
      '\uD800',
      'a=%',
      ' = ; = ',
      '__Host-sid=%',
      '__Host-sid=%E0%A4%A',
      `__Host-sid=${'%'.repeat(50)}`,
      '__Host-sid==',
      '__Host-sid',
    ]) {
      expect(() => cookies.read(request(header))).not.toThrow();
      expect(cookies.read(request(header)).kind).not.toBe('token');
    }
  });
});

describe.each([
  ['Express', () => new FakeExpressResponse()],
  ['Fastify', () => new FakeFastifyReply()],
] as const)('CookieTransport.write on %s', (_, makeResponse) => {
  it('sends the token in an HttpOnly, Secure, SameSite=Lax, host-only cookie for path /', () => {
    const response = makeResponse();
    const token = generateToken();
    transport().write(response, token, 30 * 60_000);
    const setCookies = setCookiesOf(response);
    expect(setCookies).toHaveLength(1);
    const { pair, attrs } = attributes(setCookies[0]!);
    expect(pair).toBe(`__Host-sid=${token}`);
    expect(attrs.get('httponly')).toBe(true);
    expect(attrs.get('secure')).toBe(true);
    expect(attrs.get('samesite')).toBe('Lax');
    expect(attrs.get('path')).toBe('/');
    expect(attrs.has('domain')).toBe(false);
    expect(attrs.get('max-age')).toBe('1800');
    expect(attrs.has('expires')).toBe(false);
  });

  it('marks the response Cache-Control: no-store', () => {
    const response = makeResponse();
    transport().write(response, generateToken(), 60_000);
    expect(cacheControlOf(response)).toBe('no-store');
  });

  it.each([
    [1_999, '1'],
    [1_000, '1'],
    [999, '0'],
    [0, '0'],
    [-5_000, '0'],
    [12 * 3_600_000 - 1, String(12 * 3_600 - 1)],
  ])('writes maxAgeMs %p as Max-Age=%s (whole seconds, rounded down, never negative)', (maxAgeMs, expected) => {
    const response = makeResponse();
    transport().write(response, generateToken(), maxAgeMs);
    const maxAge = attributes(setCookiesOf(response)[0]!).attrs.get('max-age');
    expect(maxAge).toBe(expected);
    expect(Number(maxAge) * 1000).toBeLessThanOrEqual(Math.max(0, maxAgeMs));
  });

  it('follows the configured options (strict, no Secure for plain-http development, Domain and Path)', () => {
    const response = makeResponse();
    const token = generateToken();
    transport({ name: 'sid', secure: false, sameSite: 'strict', domain: 'example.com', path: '/app' }).write(
      response,
      token,
      5_000,
    );
    const { pair, attrs } = attributes(setCookiesOf(response)[0]!);
    expect(pair).toBe(`sid=${token}`);
    expect(attrs.get('httponly')).toBe(true);
    expect(attrs.has('secure')).toBe(false);
    expect(attrs.get('samesite')).toBe('Strict');
    expect(attrs.get('domain')).toBe('example.com');
    expect(attrs.get('path')).toBe('/app');
    expect(attrs.get('max-age')).toBe('5');
  });

  it('clear() expires the cookie now with Max-Age=0 and the same scope attributes', () => {
    const response = makeResponse();
    transport().clear(response);
    const setCookies = setCookiesOf(response);
    expect(setCookies).toHaveLength(1);
    const { pair, attrs } = attributes(setCookies[0]!);
    expect(pair).toBe('__Host-sid=');
    expect(attrs.get('max-age')).toBe('0');
    expect(attrs.get('httponly')).toBe(true);
    expect(attrs.get('secure')).toBe(true);
    expect(attrs.get('path')).toBe('/');
    expect(attrs.has('domain')).toBe(false);
    expect(cacheControlOf(response)).toBe('no-store');
  });
});

describe('CookieTransport response shapes', () => {
  it('appends Set-Cookie on Express, so earlier cookies on the response survive', () => {
    const response = new FakeExpressResponse();
    const cookies = transport();
    cookies.clear(response);
    cookies.write(response, generateToken(), 60_000);
    expect(response.appended.map(([name]) => name.toLowerCase())).toEqual(['set-cookie', 'set-cookie']);
    expect([...response.set.keys()].map((name) => name.toLowerCase())).not.toContain('set-cookie');
    expect(response.set.get('Cache-Control')).toBe('no-store');
  });

  it('uses reply.header on Fastify for both Set-Cookie and Cache-Control', () => {
    const response = new FakeFastifyReply();
    transport().write(response, generateToken(), 60_000);
    expect(response.headers.map(([name]) => name.toLowerCase()).sort()).toEqual(['cache-control', 'set-cookie']);
  });
});
