import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createTestSession } from 'nest-pg-session/testing';
import { AuthModule } from '../recipes/passport/auth.module.js';
import { IdentityProvider, OAuthController } from '../recipes/passport/oauth.controller.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADAPTERS, cookie, sessionCookie } from '../support/demo.js';
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

  describe('an OAuth/OIDC callback with its state kept in the session', () => {
    /** Starts the flow in `session` and returns the state the provider would send back. */
    const start = async (headers: Record<string, string>) => {
      const response = await request(host.server).post('/auth/oauth/start').set(headers).expect(200);
      return new URL(response.body.redirectTo).searchParams.get('state')!;
    };

    it('a matching state logs in with a new session; the old token and the state are spent', async () => {
      const before = await createTestSession(host.app, { userId: '1' });
      const state = await start(before.headers());
      const { rows } = await db.pool.query(`SELECT data->>'oauthState' AS state FROM user_sessions WHERE id = $1`, [
        before.sessionId,
      ]);
      expect(rows[0].state).toBe(state);

      const callback = await request(host.server)
        .get('/auth/oauth/callback')
        .query({ code: 'good-code', state })
        .set(before.headers())
        .expect(200);
      expect(callback.body.userId).toBe('idp-42');
      await request(host.server)
        .get('/auth/me')
        .set(cookie(sessionCookie(callback)!))
        .expect(200, { userId: 'idp-42' });
      // The callback URL replayed (from history, a log, a Referer) finds nothing to log in with.
      await request(host.server)
        .get('/auth/oauth/callback')
        .query({ code: 'good-code', state })
        .set(before.headers())
        .expect(401);
    });

    it('a wrong, missing or repeated state is refused (403), and the right one cannot follow', async () => {
      for (const kind of ['another session', 'none', 'twice']) {
        const victim = await createTestSession(host.app, { userId: '1' });
        const state = await start(victim.headers());
        const other = await start((await createTestSession(host.app, { userId: '2' })).headers());
        const query =
          kind === 'another session'
            ? { code: 'good-code', state: other }
            : kind === 'twice'
              ? `code=good-code&state=${state}&state=${state}`
              : { code: 'good-code' };
        const refused = await request(host.server).get('/auth/oauth/callback').query(query).set(victim.headers());
        expect({ kind, status: refused.status }).toEqual({ kind, status: 403 });
        // Used once, whatever the outcome: a guessing attacker gets one try per start.
        await request(host.server)
          .get('/auth/oauth/callback')
          .query({ code: 'good-code', state })
          .set(victim.headers())
          .expect(403);
        await request(host.server).get('/auth/me').set(victim.headers()).expect(200, { userId: '1' });
      }
    });

    it('a code the provider refuses logs nobody in', async () => {
      const session = await createTestSession(host.app, { userId: '1' });
      const state = await start(session.headers());
      await request(host.server)
        .get('/auth/oauth/callback')
        .query({ code: 'stolen-code', state })
        .set(session.headers())
        .expect(403);
      await request(host.server).get('/auth/me').set(session.headers()).expect(200, { userId: '1' });
    });
  });
});
