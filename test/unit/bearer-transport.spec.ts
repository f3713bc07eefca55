import { describe, expect, it } from '@jest/globals';
import { generateToken, TOKEN_LENGTH } from '../../src/session/token/session-token.js';
import { BearerTransport } from '../../src/session/transport/bearer.transport.js';
import type { HttpRequestLike } from '../../src/session/transport/http.js';
import type { SessionTransport } from '../../src/session/transport/session-transport.js';

/** Typed as the interface the session layer calls it through. */
const bearer: SessionTransport = new BearerTransport('session-token');

const withAuthorization = (authorization: string | string[]): HttpRequestLike => ({ headers: { authorization } });

class FakeExpressResponse {
  readonly set = new Map<string, string>();
  readonly appended: Array<[string, string]> = [];
  append(name: string, value: string): this {
    this.appended.push([name, value]);
    return this;
  }
  setHeader(name: string, value: string): this {
    this.set.set(name, value);
    return this;
  }
}

class FakeFastifyReply {
  readonly headers = new Map<string, string>();
  header(name: string, value: string): this {
    this.headers.set(name, value);
    return this;
  }
}

describe('BearerTransport.read', () => {
  it('is a bearer transport (no CSRF needed)', () => {
    expect(bearer.kind).toBe('bearer');
  });

  it('accepts Authorization: Bearer <token>', () => {
    const token = generateToken();
    expect(bearer.read(withAuthorization(`Bearer ${token}`))).toEqual({ kind: 'token', token });
  });

  it.each(['bearer', 'BEARER', 'BeArEr'])('accepts the scheme spelled %s (schemes are case-insensitive)', (scheme) => {
    const token = generateToken();
    expect(bearer.read(withAuthorization(`${scheme} ${token}`))).toEqual({ kind: 'token', token });
  });

  it('tolerates surrounding whitespace of the header value', () => {
    const token = generateToken();
    expect(bearer.read(withAuthorization(`  Bearer ${token}  `))).toEqual({ kind: 'token', token });
  });

  it('keeps the token exactly as sent (no case folding of the token)', () => {
    const token = `abcDEF${generateToken().slice(6)}`;
    expect(bearer.read(withAuthorization(`bearer ${token}`))).toEqual({ kind: 'token', token });
  });

  it('finds nothing without an Authorization header, or with an empty one', () => {
    expect(bearer.read({ headers: {} })).toEqual({ kind: 'none' });
    expect(bearer.read({ headers: { authorization: undefined } })).toEqual({ kind: 'none' });
    expect(bearer.read(withAuthorization(''))).toEqual({ kind: 'none' });
    expect(bearer.read(withAuthorization('   '))).toEqual({ kind: 'none' });
  });

  it.each([
    ['Basic credentials', () => `Basic ${Buffer.from('user:pass').toString('base64')}`],
    ['another scheme with a valid token', (t: string) => `Token ${t}`],
    ['Digest', (t: string) => `Digest ${t}`],
    ['a bare token without a scheme', (t: string) => t],
    ['the scheme alone', () => 'Bearer'],
    ['the scheme and a space', () => 'Bearer '],
    ['a prefixed scheme', (t: string) => `XBearer ${t}`],
    ['a scheme without space', (t: string) => `Bearer${t}`],
    ['two spaces', (t: string) => `Bearer  ${t}`],
    ['a tab', (t: string) => `Bearer\t${t}`],
    ['a colon', (t: string) => `Bearer: ${t}`],
    ['an extra part', (t: string) => `Bearer ${t} extra`],
    ['two tokens', (t: string) => `Bearer ${t} ${generateToken()}`],
    ['a trailing comma', (t: string) => `Bearer ${t},`],
    ['a second credential', (t: string) => `Bearer ${t}, Basic abc`],
    ['auth parameters', (t: string) => `Bearer token=${t}`],
    ['a quoted token', (t: string) => `Bearer "${t}"`],
    ['a short token', (t: string) => `Bearer ${t.slice(1)}`],
    ['a long token', (t: string) => `Bearer ${t}A`],
    ['standard base64', () => `Bearer ${'A'.repeat(41)}+A`],
    ['padding', () => `Bearer ${'A'.repeat(42)}=`],
    ['a non-canonical last character', () => `Bearer ${'A'.repeat(TOKEN_LENGTH - 1)}B`],
    ['percent-encoding', (t: string) => `Bearer %${t.charCodeAt(0).toString(16)}${t.slice(1)}`],
    ['a huge value', () => `Bearer ${'A'.repeat(100_000)}`],
  ])('calls %s malformed', (_, header) => {
    const token = generateToken();
    expect(bearer.read(withAuthorization(header(token)))).toEqual({ kind: 'malformed' });
  });

  it('refuses two Authorization headers rather than picking one', () => {
    const one = generateToken();
    const two = generateToken();
    expect(bearer.read(withAuthorization([`Bearer ${one}`, `Bearer ${two}`]))).toEqual({ kind: 'malformed' });
    expect(bearer.read(withAuthorization([`Bearer ${one}`, `Bearer ${one}`]))).toEqual({ kind: 'malformed' });
    expect(bearer.read(withAuthorization([`Bearer ${one}`]))).toEqual({ kind: 'token', token: one });
  });

  it('never reads a token from the query string, the body, a cookie or another header', () => {
    const token = generateToken();
    const request = {
      url: `/me?access_token=${token}&token=${token}`,
      query: { access_token: token, token },
      body: { access_token: token },
      headers: {
        cookie: `__Host-sid=${token}; access_token=${token}`,
        'session-token': token,
        'x-session-token': token,
        'x-access-token': token,
        'proxy-authorization': `Bearer ${token}`,
        'x-forwarded-authorization': `Bearer ${token}`,
      },
    } as HttpRequestLike;
    expect(bearer.read(request)).toEqual({ kind: 'none' });
  });
});

describe.each([
  [
    'Express',
    () => new FakeExpressResponse(),
    (r: FakeExpressResponse | FakeFastifyReply) => (r instanceof FakeExpressResponse ? r.set : r.headers),
  ],
  [
    'Fastify',
    () => new FakeFastifyReply(),
    (r: FakeExpressResponse | FakeFastifyReply) => (r instanceof FakeExpressResponse ? r.set : r.headers),
  ],
] as const)('BearerTransport.write on %s', (_, makeResponse, headersOf) => {
  it('hands the rotated token over in the rotation header and forbids caching', () => {
    const response = makeResponse();
    const token = generateToken();
    bearer.write(response, token, 60_000);
    const headers = headersOf(response);
    expect(headers.get('session-token')).toBe(token);
    expect(headers.get('Cache-Control')).toBe('no-store');
    expect(headers.get('Access-Control-Expose-Headers')).toBe('session-token'); // readable by cross-origin clients
    expect([...headers.keys()].map((name) => name.toLowerCase()).sort()).toEqual([
      'access-control-expose-headers',
      'cache-control',
      'session-token',
    ]);
  });

  it('uses the configured rotation header', () => {
    const response = makeResponse();
    const token = generateToken();
    (new BearerTransport('x-new-session') as SessionTransport).write(response, token, 60_000);
    expect(headersOf(response).get('x-new-session')).toBe(token);
    expect(headersOf(response).has('session-token')).toBe(false);
  });

  it('sets no cookie, and clear() writes nothing', () => {
    const response = makeResponse();
    bearer.write(response, generateToken(), 60_000);
    expect([...headersOf(response).keys()].map((name) => name.toLowerCase())).not.toContain('set-cookie');
    if (response instanceof FakeExpressResponse) expect(response.appended).toEqual([]);
    const cleared = makeResponse();
    bearer.clear(cleared);
    expect(headersOf(cleared).size).toBe(0);
  });
});
