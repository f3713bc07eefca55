import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import { attachSession, isSessionResolved, sessionOf } from '../../src/session/active-session.js';
import { clientIp, rememberClientIp } from '../../src/session/transport/http.js';

describe('per-request state (client address, session)', () => {
  it("the guard's answer for the client address wins over the framework's, even when it is undefined", () => {
    const request = { headers: {}, ip: '203.0.113.9' };
    expect(clientIp(request)).toBe('203.0.113.9'); // not asked yet: the framework's
    rememberClientIp(request, '198.51.100.7');
    expect(clientIp(request)).toBe('198.51.100.7');
    rememberClientIp(request, undefined); // "unknown" is an answer too (e.g. a subclass that trusts no header)
    expect(clientIp(request)).toBeUndefined();
  });

  it('a request is resolved once a session or null is attached, not when only its address is known', () => {
    const request = { headers: {} };
    rememberClientIp(request, '198.51.100.7');
    expect(isSessionResolved(request)).toBe(false);
    attachSession(request, null);
    expect(isSessionResolved(request)).toBe(true);
    expect(sessionOf(request)).toBeUndefined();
    expect(clientIp(request)).toBe('198.51.100.7'); // the two facts live side by side
  });

  it('nothing written onto the request object changes either', () => {
    const request: Record<string, unknown> & { headers: Record<string, string> } = { headers: {} };
    rememberClientIp(request, '198.51.100.7');
    attachSession(request, null);
    Object.assign(request, { session: { userId: 'forged' }, clientIp: '10.0.0.1', ip: '10.0.0.2' });
    expect(sessionOf(request)).toBeUndefined();
    expect(clientIp(request)).toBe('198.51.100.7');
  });

  it('is not copied, inherited, serialised or shown with the request, and has no key to replace it by', () => {
    const session = { id: 'a-session', userId: 'user-1' } as never;
    const request: Record<PropertyKey, unknown> & { headers: Record<string, string> } = { headers: {} };
    attachSession(request, session);
    rememberClientIp(request, '198.51.100.7');
    expect(sessionOf({ ...request })).toBeUndefined(); // a middleware's shallow copy carries no session
    expect(clientIp({ ...request })).toBeUndefined(); // nor the address the guard settled
    expect(sessionOf(Object.assign({}, request))).toBeUndefined();
    expect(sessionOf(Object.create(request) as object)).toBeUndefined(); // nor does an object derived from it
    expect(JSON.stringify(request)).not.toMatch(/user-1|198\.51/);
    expect(inspect(request, { showHidden: true, depth: 5 })).not.toMatch(/user-1|198\.51/); // logging the request prints neither
    expect(Reflect.ownKeys(request)).toEqual(['headers']); // no key, string or symbol, that code outside the module could overwrite or delete
    expect(sessionOf(request)).toBe(session);
    expect(clientIp(request)).toBe('198.51.100.7');
  });
});
