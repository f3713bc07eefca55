import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { AddressInfo } from 'node:net';
import { generateToken } from '../../src/session/token/session-token.js';
import { ADAPTERS, login, startDemo, type RunningDemo } from '../support/demo.js';
import { buildRequest, rawRequest } from '../support/raw-http.js';

const SQL_BITS = [
  "' OR '1'='1",
  "'; DROP TABLE user_sessions; --",
  '" OR ""="',
  '\\',
  '%00',
  '$1',
  '1; SELECT pg_sleep(10)',
  '*/ /*',
];
const hostile = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 120 }),
  fc.constantFrom(...SQL_BITS, '\r\nSet-Cookie: evil=1', '\u0000', 'A'.repeat(43), '\ud800', '..%2f..%2f'),
);
const bytes = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b));
const utf8 = (s: string) => Buffer.from(s, 'utf8');
/** Percent-encodes every byte; lone surrogates become U+FFFD like a browser would send. */
const pct = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
const rawPathPart = fc.constantFrom('%', '%zz', '%ff%fe', '%c0%af', '..%2f..%2f', '%00', "'--");

/** One fuzz case: the raw request and whether it carries the valid session's cookie. */
type Case = { method: string; path: string; headers: Array<[string, string | Buffer]>; body?: Buffer };

function cases(validToken: string): fc.Arbitrary<Case> {
  const cookieValue = fc.oneof(
    hostile.map((v) => utf8(`__Host-sid=${v}`)),
    bytes.map((b) => Buffer.concat([Buffer.from('__Host-sid='), b])),
    fc.constant(Buffer.from(`__Host-sid=${validToken}; __Host-sid=${generateToken()}`)),
    fc.constant(Buffer.from(`__HOST-sid=${validToken}; sid=${validToken}`)),
    fc.integer({ min: 4_000, max: 40_000 }).map((n) => Buffer.from(`__Host-sid=${'A'.repeat(n)}`)),
    fc.constant(Buffer.from(`__Host-sid=${validToken}`)),
  );
  const authorization = fc.oneof(
    hostile.map((v) => utf8(`Bearer ${v}`)),
    bytes,
    fc.constant(Buffer.from(`Bearer ${validToken}`)),
  );
  const jsonBody = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => utf8(JSON.stringify(v))),
    fc.integer({ min: 100, max: 20_000 }).map((depth) => utf8(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`)),
    fc.integer({ min: 100, max: 20_000 }).map((depth) => utf8(`${'['.repeat(depth)}${']'.repeat(depth)}`)),
    fc.constant(utf8(JSON.stringify({ big: 'x'.repeat(300_000) }))),
    fc.constant(utf8('{"nul":"\\u0000","lone":"\\udc00"}')),
    hostile.map((v) => utf8(v)),
    bytes,
    fc.record({ username: hostile, password: hostile }).map((v) => utf8(JSON.stringify(v))),
  );
  const target = fc.oneof(
    fc.constant({ method: 'GET', path: '/me' }),
    fc.constant({ method: 'GET', path: '/me/data' }),
    fc.constant({ method: 'GET', path: '/sessions' }),
    hostile.map((v) => ({ method: 'DELETE', path: `/sessions/${pct(v)}` })),
    rawPathPart.map((v) => ({ method: 'DELETE', path: `/sessions/${v}` })),
    hostile.map((v) => ({ method: 'GET', path: `/me?${pct(v)}=${pct(v)}` })),
    rawPathPart.map((v) => ({ method: 'GET', path: `/sessions?${v}=${v}` })),
    fc.constant({ method: 'PATCH', path: '/me/data', withBody: true }),
    fc.constant({ method: 'POST', path: '/auth/login', withBody: true }),
  );
  return fc
    .record({
      target,
      cookie: fc.option(cookieValue, { nil: undefined }),
      authorization: fc.option(authorization, { nil: undefined }),
      body: jsonBody,
      contentType: fc.constantFrom('application/json', 'text/plain', 'application/json; charset=latin1'),
    })
    .map(({ target, cookie, authorization, body, contentType }) => {
      const headers: Array<[string, string | Buffer]> = [];
      if (cookie) headers.push(['Cookie', cookie]);
      if (authorization) headers.push(['Authorization', authorization]);
      const withBody = 'withBody' in target;
      if (withBody) headers.push(['Content-Type', contentType]);
      return { method: target.method, path: target.path, headers, body: withBody ? body : undefined };
    });
}

describe.each(ADAPTERS)('fuzzed HTTP input (%s)', (adapter) => {
  let demo: RunningDemo;
  let port: number;
  beforeAll(async () => {
    demo = await startDemo(adapter);
    await demo.app.listen(0, '127.0.0.1');
    port = (demo.app.getHttpServer().address() as AddressInfo).port;
  });
  afterAll(async () => demo?.close());

  it('answers every hostile request with a JSON 4xx (or a valid 2xx), never a 5xx or a hang, and writes nothing it should not', async () => {
    const { token, sessionId } = await login(demo.server, 'bob');
    const sessionsBefore = (await demo.db.pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n;
    const byStatus: Record<number, number> = {};
    const patchedKeys = new Set<string>();
    let loggedOut = false;

    const property = fc.asyncProperty(cases(token), async (c) => {
      const response = await rawRequest(port, buildRequest(c.method, c.path, c.headers, c.body));
      byStatus[response.status] = (byStatus[response.status] ?? 0) + 1;
      expect(response.status).toBeLessThan(500);
      if (response.status >= 400) {
        expect(response.headers['content-type']).toMatch(/application\/json/);
        expect(JSON.parse(response.body)).toMatchObject({ statusCode: response.status });
      }
      if (c.method === 'PATCH' && response.status === 200)
        for (const key of Object.keys(JSON.parse(c.body!.toString()))) patchedKeys.add(key);
      if (c.path === '/auth/logout' && response.status === 204) loggedOut = true;
    });
    const result = await fc.check(property, { numRuns: 500, seed: 20261122, endOnFailure: true });
    if (result.failed) {
      const c = result.counterexample![0];
      const shown = {
        method: c.method,
        path: c.path.slice(0, 200),
        headers: c.headers.map(([n, v]) => [n, v.toString().slice(0, 200)]),
        body: c.body?.toString('latin1').slice(0, 300),
      };
      throw new Error(`counterexample ${JSON.stringify(shown)}: ${String(result.errorInstance).slice(0, 1_000)}`);
    }

    console.log(`[fuzz ${adapter}] 500 requests by status: ${JSON.stringify(byStatus)}`);
    // No login in the corpus has valid credentials: no session may have appeared (one may
    // have gone, if a case logged the valid session out).
    const sessionsAfter = (await demo.db.pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n;
    expect(sessionsAfter).toBe(loggedOut ? sessionsBefore - 1 : sessionsBefore);
    const { rows } = await demo.db.pool.query('SELECT data FROM user_sessions WHERE id = $1', [sessionId]);
    if (!loggedOut) for (const key of Object.keys(rows[0].data)) expect(patchedKeys.has(key)).toBe(true);
    const audit = await demo.db.pool.query(`SELECT count(*)::int AS n FROM session_audit_log WHERE event = 'created'`);
    expect(audit.rows[0].n).toBe(1);
  });
});
