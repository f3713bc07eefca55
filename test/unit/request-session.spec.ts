import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import { internalsOf, RequestSession } from '../../src/session/active-session.js';
import { csrfTokenFor } from '../../src/session/csrf/csrf-token.js';
import type { SessionLookup } from '../../src/session/store/session-row.js';
import { generateToken, tokenDigest } from '../../src/session/token/session-token.js';

const at = (iso: string) => new Date(iso);
const row: SessionLookup = {
  id: '7d0f6d2e-3a8b-4c39-9a57-0c4f3b7d2a11',
  userId: 'user-1',
  data: { theme: 'dark' },
  createdAt: at('2026-12-01T10:00:00Z'),
  lastSeenAt: at('2026-12-01T10:05:00Z'),
  authenticatedAt: at('2026-12-01T10:00:00Z'),
  idleExpiresAt: at('2026-12-01T10:35:00Z'),
  absoluteExpiresAt: at('2026-12-01T22:00:00Z'),
  rotatedAt: at('2026-12-01T10:00:00Z'),
  revokedAt: null,
  ip: '10.0.0.1',
  userAgent: 'jest',
  version: 3,
  lifetime: 'default',
  impersonatorId: null,
  impersonatorSessionId: null,
  secondFactorPending: false,
  isCurrentToken: true,
  dbNow: at('2026-12-01T10:05:00Z'),
};
/** A session for `token` as the validator makes it. */
const made = (r: SessionLookup, transport: 'cookie' | 'bearer', token = generateToken()) =>
  new RequestSession(r, transport, token, tokenDigest(token));

describe('RequestSession (what handlers get)', () => {
  it("a cookie session's CSRF token is the HMAC of the token the client holds, also in JSON", () => {
    const token = generateToken();
    const session = made(row, 'cookie', token);
    expect(session.csrfToken).toBe(csrfTokenFor(token));
    expect(session.csrfToken).toBe(session.csrfToken);
    expect(JSON.parse(JSON.stringify(session))).toEqual({
      id: row.id,
      userId: 'user-1',
      isGuest: false,
      lifetime: 'default',
      data: { theme: 'dark' },
      createdAt: '2026-12-01T10:00:00.000Z',
      lastSeenAt: '2026-12-01T10:05:00.000Z',
      authenticatedAt: '2026-12-01T10:00:00.000Z',
      expiresAt: '2026-12-01T10:35:00.000Z',
      idleExpiresAt: '2026-12-01T10:35:00.000Z',
      absoluteExpiresAt: '2026-12-01T22:00:00.000Z',
      transport: 'cookie',
      csrfToken: csrfTokenFor(token),
    });
  });

  it('never shows the session token, nor what the row keeps for the module (address, version, rotation)', () => {
    const token = generateToken();
    const session = made(row, 'cookie', token);
    for (const shown of [
      JSON.stringify(session),
      inspect(session, { depth: 5, showHidden: true }),
      Object.keys(session).join(),
    ]) {
      expect(shown).not.toContain(token);
      expect(shown).not.toMatch(
        /10\.0\.0\.1|rotatedAt|revokedAt|version|userAgent|tokenHash|tokenDigest|dbNow|checkedAt|isCurrentToken/,
      );
    }
  });

  it("keeps the module's own facts about the check where only the module reads them", () => {
    const token = generateToken();
    const session = made({ ...row, isCurrentToken: false }, 'cookie', token);
    expect(internalsOf(session)).toEqual({
      tokenDigest: tokenDigest(token),
      checkedAt: row.dbNow.getTime(),
      isCurrentToken: false,
    });
    // A look-alike object (say, a handler's copy of the session) carries none.
    expect(internalsOf({ ...session })).toBeUndefined();
    expect(internalsOf(JSON.parse(JSON.stringify(session)))).toBeUndefined();
  });

  it("records when it was checked: the time given (a cached row was read earlier than this request), else the row's read", () => {
    const later = row.dbNow.getTime() + 4_000;
    expect(internalsOf(new RequestSession(row, 'cookie', generateToken(), 'd', later))?.checkedAt).toBe(later);
    expect(internalsOf(new RequestSession(row, 'cookie', generateToken(), 'd'))?.checkedAt).toBe(row.dbNow.getTime());
  });

  it('a bearer session has no CSRF token (no cookie rides along cross-site)', () => {
    const session = made(row, 'bearer', generateToken());
    expect(session.csrfToken).toBeUndefined();
    expect(JSON.parse(JSON.stringify(session))).not.toHaveProperty('csrfToken');
  });

  it('hands out data frozen all the way down: only SessionService.patch() persists a change, so an assignment fails loudly', () => {
    const session = made({ ...row, data: { cart: [{ sku: 'a' }], role: 'user' } }, 'cookie');
    const data = session.data as { cart: { sku: string }[]; role: string };
    expect(() => {
      data.role = 'admin';
    }).toThrow(TypeError);
    expect(() => data.cart.push({ sku: 'b' })).toThrow(TypeError);
    expect(() => {
      data.cart[0].sku = 'z';
    }).toThrow(TypeError);
    expect(session.data).toEqual({ cart: [{ sku: 'a' }], role: 'user' });
  });

  it('hands out its own Dates: a handler that changes one (setTime) cannot change the row, which a cache may share with later requests', () => {
    const shared = { ...row };
    const before = [
      shared.createdAt,
      shared.lastSeenAt,
      shared.authenticatedAt,
      shared.idleExpiresAt,
      shared.absoluteExpiresAt,
    ].map((d) => d.getTime());
    const session = made(shared, 'cookie');
    for (const date of [
      session.createdAt,
      session.lastSeenAt,
      session.authenticatedAt,
      session.expiresAt,
      session.idleExpiresAt,
      session.absoluteExpiresAt,
    ]) {
      date.setTime(date.getTime() + 86_400_000);
    }
    expect(
      [shared.createdAt, shared.lastSeenAt, shared.authenticatedAt, shared.idleExpiresAt, shared.absoluteExpiresAt].map(
        (d) => d.getTime(),
      ),
    ).toEqual(before);
    expect(made(shared, 'cookie').expiresAt).toEqual(row.idleExpiresAt);
  });

  it('expires at the earlier of the idle and the absolute deadline', () => {
    expect(made(row, 'cookie', generateToken()).expiresAt).toEqual(row.idleExpiresAt);
    const late = { ...row, idleExpiresAt: at('2026-12-02T10:00:00Z') };
    expect(made(late, 'cookie', generateToken()).expiresAt).toEqual(row.absoluteExpiresAt);
  });
});
