import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createTestSession } from 'nest-pg-session/testing';
import { AuthModule } from '../recipes/passport/auth.module.js';
import { IdentityProvider, OAuthController } from '../recipes/passport/oauth.controller.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADAPTERS, bareCookie, cookie, sessionCookie } from '../support/demo.js';
import { createHostApp, type HostApp } from '../support/host-app.js';

/** The provider's side, faked: it knows one code, for user 'idp-42'. */
class FakeProvider extends IdentityProvider {
  authorizeUrl(state: string): string {
    return `https://idp.example/authorize?state=${state}`;
  }
  async exchange(code: string) {
    return code === 'good-code' ? { id: 'idp-42' } : undefined;
  }
}

const credentials = { username: 'alice', password: 'alice-password' };

describe.each(ADAPTERS)('the Passport recipe (docs/passport.md) on %s', (adapter) => {
  let db: TestDatabase;
  let host: HostApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    host = await createHostApp({
      url: db.url,
      adapter,
      login: false,
      // The OAuth recipe keeps its state in a guest session before login.
      session: { guests: { enabled: true } },
      imports: [AuthModule],
      controllers: [OAuthController],
      providers: [{ provide: IdentityProvider, useClass: FakeProvider }],
    });
  });
  afterAll(async () => {
    await host?.app.close();
    await db?.drop();
  });
  const liveSessions = async () =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions WHERE revoked_at IS NULL`)).rows[0].n;

  describe('passport-local: the strategy checks the password, SessionService makes the session', () => {
    it('a right password logs in with this module session, and no Passport or express-session cookie', async () => {
      const response = await request(host.server).post('/auth/login').send(credentials).expect(200);
      expect(response.body).toMatchObject({ userId: '1', csrfToken: expect.any(String) });
      const cookies = response.headers['set-cookie'] as unknown as string[];
      expect(cookies.map((line) => line.split('=')[0]).sort()).toEqual(['__Host-csrf', '__Host-sid']);
      const token = sessionCookie(response)!;
      await request(host.server).get('/auth/me').set(cookie(token)).expect(200, { userId: '1' });
      await request(host.server).post('/auth/logout').set(cookie(token)).expect(204);
      await request(host.server).get('/auth/me').set(cookie(token)).expect(401);
    });

    it.each([
      ['a wrong password', { username: 'alice', password: 'wrong' }],
      ['an unknown user', { username: 'mallory', password: 'alice-password' }],
      ['no password', { username: 'alice' }],
      ['a password that is not a string', { username: 'alice', password: ['alice-password'] }],
    ])('%s answers 401 and creates no session', async (_, body) => {
      const before = await liveSessions();
      const response = await request(host.server).post('/auth/login').send(body).expect(401);
      expect(response.headers['set-cookie']).toBeUndefined();
      expect(await liveSessions()).toBe(before);
    });

    it('a login that carried a session token revokes it (fixation), as without Passport', async () => {
      const planted = await createTestSession(host.app, { userId: '1' });
      const response = await request(host.server)
        .post('/auth/login')
        .set('Cookie', planted.cookie!)
        .send(credentials)
        .expect(200);
      expect(sessionCookie(response)).not.toBe(planted.token);
      expect((await request(host.server).get('/auth/me').set(planted.headers()).expect(401)).body.reason).toBe(
        'revoked',
      );
    });

    it('the rest of the app stays behind the session guard: Passport opens only the login route', async () => {
      expect((await request(host.server).get('/auth/me').expect(401)).body.reason).toBe('missing');
    });
  });

  describe('an OAuth/OIDC callback with its state kept in a guest session before login', () => {
    const guestRows = async () =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions WHERE user_id IS NULL`)).rows[0].n;
    const userRows = async (userId: string) =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions WHERE user_id = $1`, [userId])).rows[0].n;
    const allRows = async () => (await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions`)).rows[0].n;
    const dataOf = async (sessionId: string) =>
      (await db.pool.query(`SELECT data FROM user_sessions WHERE id = $1`, [sessionId])).rows[0].data;
    const stateOf = (response: request.Response) => new URL(response.body.redirectTo).searchParams.get('state')!;
    const callback = (query: object | string, headers: Record<string, string> = {}) =>
      request(host.server).get('/auth/oauth/callback').query(query).set(headers);

    /** An anonymous visitor starts the flow: answers the guest's token and session id, and the state. */
    const startAsGuest = async () => {
      const response = await request(host.server).post('/auth/oauth/start').expect(200);
      const token = sessionCookie(response)!;
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const state = stateOf(response);
      const { rows } = await db.pool.query(`SELECT id FROM user_sessions WHERE data->>'oauthState' = $1`, [state]);
      return { token, state, sessionId: rows[0].id as string };
    };

    it('an anonymous start sets a guest cookie and stores the state in exactly one new guest row', async () => {
      const before = await allRows();
      const response = await request(host.server).post('/auth/oauth/start').expect(200);
      expect(sessionCookie(response)).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const state = stateOf(response);
      expect(state).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await allRows()).toBe(before + 1);
      const { rows } = await db.pool.query(
        `SELECT user_id, lifetime, data FROM user_sessions WHERE data->>'oauthState' = $1`,
        [state],
      );
      expect(rows).toEqual([{ user_id: null, lifetime: 'guest', data: { oauthState: state } }]);
    });

    it('the right state turns the guest into the user: new session, guest token 401, state spent and carried as null', async () => {
      const guest = await startAsGuest();
      const login = await callback({ code: 'good-code', state: guest.state }, cookie(guest.token)).expect(200);
      expect(login.body).toMatchObject({ userId: 'idp-42', csrfToken: expect.any(String) });
      const userToken = sessionCookie(login)!;
      expect(userToken).not.toBe(guest.token);
      await request(host.server).get('/auth/me').set(cookie(userToken)).expect(200, { userId: 'idp-42' });
      expect((await request(host.server).get('/auth/me').set(cookie(guest.token)).expect(401)).body.reason).toBe(
        'revoked',
      );
      expect(await dataOf(login.body.sessionId)).toEqual({ oauthState: null });
      const { rows } = await db.pool.query(`SELECT revoke_reason FROM user_sessions WHERE id = $1`, [guest.sessionId]);
      expect(rows[0].revoke_reason).toBe('guest_upgraded');
    });

    it('a replayed callback fails: with the revoked guest token, and with the new session', async () => {
      const guest = await startAsGuest();
      const login = await callback({ code: 'good-code', state: guest.state }, cookie(guest.token)).expect(200);
      const rows = await allRows();
      // The callback URL replayed (from history, a log, a Referer) finds nothing to log in with.
      const replayed = await callback({ code: 'good-code', state: guest.state }, cookie(guest.token)).expect(403);
      expect(replayed.headers['set-cookie']).toBeUndefined();
      await callback({ code: 'good-code', state: guest.state }, cookie(sessionCookie(login)!)).expect(403);
      expect(await allRows()).toBe(rows);
    });

    it('a wrong, missing or repeated state is refused (403), spends the state, and the right one cannot follow', async () => {
      for (const kind of ['another flow', 'none', 'twice']) {
        const logins = await userRows('idp-42');
        const guest = await startAsGuest();
        const other = await startAsGuest();
        const query =
          kind === 'another flow'
            ? { code: 'good-code', state: other.state }
            : kind === 'twice'
              ? `code=good-code&state=${guest.state}&state=${guest.state}`
              : { code: 'good-code' };
        const refused = await callback(query, cookie(guest.token));
        expect({ kind, status: refused.status }).toEqual({ kind, status: 403 });
        expect(await dataOf(guest.sessionId)).toEqual({ oauthState: null });
        // Used once, whatever the outcome: a guessing attacker gets one try per start.
        await callback({ code: 'good-code', state: guest.state }, cookie(guest.token)).expect(403);
        expect(await userRows('idp-42')).toBe(logins);
      }
    });

    it('a callback without any session is refused (403) and stores nothing', async () => {
      const guest = await startAsGuest(); // a real state, sent by a browser that did not start the flow
      const before = await allRows();
      const refused = await callback({ code: 'good-code', state: guest.state }).expect(403);
      expect(refused.headers['set-cookie']).toBeUndefined();
      expect(await allRows()).toBe(before);
      expect(await dataOf(guest.sessionId)).toEqual({ oauthState: guest.state });
    });

    it('a code the provider refuses logs nobody in, and the guest stays a guest', async () => {
      const guest = await startAsGuest();
      await callback({ code: 'stolen-code', state: guest.state }, cookie(guest.token)).expect(403);
      expect(await dataOf(guest.sessionId)).toEqual({ oauthState: null });
      const { rows } = await db.pool.query(`SELECT revoked_at FROM user_sessions WHERE id = $1`, [guest.sessionId]);
      expect(rows[0].revoked_at).toBeNull();
    });

    it.each([
      ['Sec-Fetch-Site: cross-site', { 'Sec-Fetch-Site': 'cross-site' }, 'cross_site'],
      ['a foreign Origin', { Origin: 'https://evil.example' }, 'origin_not_allowed'],
    ])('a start sent cross-site (%s) is refused (403) and starts no guest session', async (_, headers, reason) => {
      const before = await guestRows();
      const refused = await request(host.server).post('/auth/oauth/start').set(headers).expect(403);
      expect(refused.body.reason).toBe(reason);
      expect(refused.headers['set-cookie']).toBeUndefined();
      expect(await guestRows()).toBe(before);
    });

    it("a guest's next start needs the guest session's CSRF token, and overwrites the state", async () => {
      const guest = await startAsGuest();
      const refused = await request(host.server).post('/auth/oauth/start').set(bareCookie(guest.token)).expect(403);
      expect(refused.body.reason).toBe('csrf_token_missing');
      expect(await dataOf(guest.sessionId)).toEqual({ oauthState: guest.state });
      const again = await request(host.server).post('/auth/oauth/start').set(cookie(guest.token)).expect(200);
      expect(sessionCookie(again)).toBeUndefined(); // the same guest session, no new row
      expect(await dataOf(guest.sessionId)).toEqual({ oauthState: stateOf(again) });
      await callback({ code: 'good-code', state: guest.state }, cookie(guest.token)).expect(403);
    });

    it('a logged-in user links a provider the same way: the state lives in their session, which is replaced', async () => {
      const before = await createTestSession(host.app, { userId: '1' });
      const start = await request(host.server).post('/auth/oauth/start').set(before.headers()).expect(200);
      expect(sessionCookie(start)).toBeUndefined();
      const state = stateOf(start);
      expect(await dataOf(before.sessionId)).toEqual({ oauthState: state });
      const login = await callback({ code: 'good-code', state }, before.headers()).expect(200);
      expect(login.body.userId).toBe('idp-42');
      await request(host.server)
        .get('/auth/me')
        .set(cookie(sessionCookie(login)!))
        .expect(200, { userId: 'idp-42' });
      expect((await request(host.server).get('/auth/me').set(before.headers()).expect(401)).body.reason).toBe(
        'revoked',
      );
    });
  });
});
