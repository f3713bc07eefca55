import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import { RequestSession } from '../../src/session/active-session.js';
import { csrfTokenFor } from '../../src/session/csrf/csrf-token.js';
import type { SessionRow } from '../../src/session/store/session-row.js';
import { generateToken } from '../../src/session/token/session-token.js';

const at = (iso: string) => new Date(iso);
const row: SessionRow = {
  id: '7d0f6d2e-3a8b-4c39-9a57-0c4f3b7d2a11', userId: 'user-1', data: { theme: 'dark' },
  createdAt: at('2026-12-01T10:00:00Z'), lastSeenAt: at('2026-12-01T10:05:00Z'), authenticatedAt: at('2026-12-01T10:00:00Z'),
  idleExpiresAt: at('2026-12-01T10:35:00Z'), absoluteExpiresAt: at('2026-12-01T22:00:00Z'), rotatedAt: at('2026-12-01T10:00:00Z'),
  revokedAt: null, ip: '10.0.0.1', userAgent: 'jest', version: 3,
};

describe('RequestSession (what handlers get)', () => {
  it("a cookie session's CSRF token is the HMAC of the token the client holds, also in JSON", () => {
    const token = generateToken();
    const session = new RequestSession(row, 'cookie', token);
    expect(session.csrfToken).toBe(csrfTokenFor(token));
    expect(session.csrfToken).toBe(session.csrfToken);
    expect(JSON.parse(JSON.stringify(session))).toEqual({
      id: row.id, userId: 'user-1', data: { theme: 'dark' }, createdAt: '2026-12-01T10:00:00.000Z', lastSeenAt: '2026-12-01T10:05:00.000Z',
      authenticatedAt: '2026-12-01T10:00:00.000Z', expiresAt: '2026-12-01T10:35:00.000Z', idleExpiresAt: '2026-12-01T10:35:00.000Z',
      absoluteExpiresAt: '2026-12-01T22:00:00.000Z', transport: 'cookie', csrfToken: csrfTokenFor(token),
    });
  });

  it('never shows the session token, nor what the row keeps for the module (address, version, rotation)', () => {
    const token = generateToken();
    const session = new RequestSession(row, 'cookie', token);
    for (const shown of [JSON.stringify(session), inspect(session, { depth: 5, showHidden: true }), Object.keys(session).join()]) {
      expect(shown).not.toContain(token);
      expect(shown).not.toMatch(/10\.0\.0\.1|rotatedAt|revokedAt|version|userAgent/);
    }
  });

  it('a bearer session has no CSRF token (no cookie rides along cross-site)', () => {
    const session = new RequestSession(row, 'bearer', generateToken());
    expect(session.csrfToken).toBeUndefined();
    expect(JSON.parse(JSON.stringify(session))).not.toHaveProperty('csrfToken');
  });

  it('hands out data frozen all the way down: only SessionService.patch() persists a change, so an assignment fails loudly', () => {
    const session = new RequestSession({ ...row, data: { cart: [{ sku: 'a' }], role: 'user' } }, 'cookie', generateToken());
    const data = session.data as { cart: { sku: string }[]; role: string };
    expect(() => { data.role = 'admin'; }).toThrow(TypeError);
    expect(() => data.cart.push({ sku: 'b' })).toThrow(TypeError);
    expect(() => { data.cart[0].sku = 'z'; }).toThrow(TypeError);
    expect(session.data).toEqual({ cart: [{ sku: 'a' }], role: 'user' });
  });

  it('expires at the earlier of the idle and the absolute deadline', () => {
    expect(new RequestSession(row, 'cookie', generateToken()).expiresAt).toEqual(row.idleExpiresAt);
    const late = { ...row, idleExpiresAt: at('2026-12-02T10:00:00Z') };
    expect(new RequestSession(late, 'cookie', generateToken()).expiresAt).toEqual(row.absoluteExpiresAt);
  });
});
