import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import request from 'supertest';
import { csrfTokenFor } from '../../src/session/csrf/csrf-token.js';
import { AggregatedAuditLog } from '../../src/session/security/aggregated-audit.js';
import { createTestSession } from '../../src/session/testing/index.js';
import { ADAPTERS, bareCookie, cookie, login, sessionCookie, startDemo, type RunningDemo } from '../support/demo.js';

const APP = 'https://app.example.com';
const CSRF_COOKIE = '__Host-csrf';

function setCookies(response: request.Response): string[] {
  return (response.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
}

function csrfCookieLine(response: request.Response): string | undefined {
  return setCookies(response).find((line) => line.startsWith(`${CSRF_COOKIE}=`));
}

function csrfCookie(response: request.Response): string | undefined {
  return csrfCookieLine(response)
    ?.slice(CSRF_COOKIE.length + 1)
    .split(';')[0];
}

describe.each(ADAPTERS)('CSRF defence for cookie sessions (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, {
      SESSION_ALLOWED_ORIGINS: `${APP},http://localhost:3000`,
      // Longer than any burst takes on a busy machine; the aggregation test ends it by moving Date.now.
      SESSION_FLOOD_WINDOW: '60s',
    });
  });
  afterAll(async () => demo?.close());

  const liveSessions = async (userId: string) =>
    (
      await demo.db.pool.query(
        'SELECT count(*)::int AS n FROM user_sessions WHERE user_id = $1 AND revoked_at IS NULL',
        [userId],
      )
    ).rows[0].n;

  it('hands the token to the app: login body, GET /me, and a script-readable __Host- cookie, all the same value', async () => {
    const { response, token, csrfToken } = await login(demo.server, 'alice');
    expect(csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(csrfToken).not.toBe(token);
    expect(csrfCookie(response)).toBe(csrfToken);
    const line = csrfCookieLine(response)!;
    expect(line).not.toMatch(/HttpOnly/i); // the page's scripts must read it
    expect(line).toMatch(/; Secure/);
    expect(line).toMatch(/; SameSite=Lax/);
    expect(line).toMatch(/; Path=\/(;|$)/);
    expect(line).not.toMatch(/Domain=/i);
    const me = await request(demo.server).get('/me').set(cookie(token)).expect(200);
    expect(me.body.csrfToken).toBe(csrfToken);
    // ASVS 3.3.5: every cookie we write stays within what browsers keep.
    for (const setCookie of setCookies(response)) {
      const [pair] = setCookie.split(';');
      expect(Buffer.byteLength(pair.replace('=', ''))).toBeLessThanOrEqual(4096);
    }
  });

  it('refuses a forged request that carries only the cookie (no token), and changes nothing', async () => {
    const other = await login(demo.server, 'bob');
    const victim = await login(demo.server, 'bob');
    const before = await liveSessions('u-bob');
    const forged = await request(demo.server).post('/sessions/revoke-others').set(bareCookie(victim.token)).expect(403);
    expect(forged.body).toMatchObject({ statusCode: 403, reason: 'csrf_token_missing' });
    await request(demo.server).patch('/me/data').set(bareCookie(victim.token)).send({ evil: true }).expect(403);
    await request(demo.server).delete(`/sessions/${other.sessionId}`).set(bareCookie(victim.token)).expect(403);
    await request(demo.server).post('/auth/logout').set(bareCookie(victim.token)).expect(403);
    expect(await liveSessions('u-bob')).toBe(before);
    expect((await request(demo.server).get('/me/data').set(cookie(victim.token)).expect(200)).body).toEqual({});
    await request(demo.server).get('/me').set(cookie(other.token)).expect(200);
  });

  it('refuses a wrong, truncated, padded or duplicated token', async () => {
    const { token, csrfToken } = await createTestSession(demo.app, { userId: 'u-alice' });
    const tries = [
      // (Surrounding blanks are not in the list: HTTP strips them before anyone sees the value.)
      'x'.repeat(43),
      csrfToken!.slice(0, 42),
      `${csrfToken}=`,
      `${csrfToken}x`,
      csrfToken!.toLowerCase(),
      '',
      csrfTokenFor(token.slice(0, 42) + 'A'),
      `${csrfToken}, ${csrfToken}`,
    ].filter((value) => value !== csrfToken);
    for (const presented of tries) {
      const response = await request(demo.server)
        .patch('/me/data')
        .set(bareCookie(token))
        .set('x-csrf-token', presented)
        .send({ a: 1 });
      expect([presented, response.status, response.body.reason]).toEqual([presented, 403, 'csrf_token_invalid']);
    }
    await request(demo.server)
      .patch('/me/data')
      .set(bareCookie(token))
      .set('x-csrf-token', csrfToken!)
      .send({ a: 1 })
      .expect(200);
  });

  it("refuses user A's CSRF token in user B's session (the attacker's own token is worthless)", async () => {
    const attacker = await login(demo.server, 'bob');
    const victim = await login(demo.server, 'alice');
    const response = await request(demo.server)
      .patch('/me/data')
      .set(bareCookie(victim.token))
      .set('x-csrf-token', attacker.csrfToken!)
      .send({ pwned: 1 })
      .expect(403);
    expect(response.body.reason).toBe('csrf_token_invalid');
    // Another session of the same user does not help either: the token is per session.
    const victimElsewhere = await login(demo.server, 'alice');
    await request(demo.server)
      .patch('/me/data')
      .set(bareCookie(victim.token))
      .set('x-csrf-token', victimElsewhere.csrfToken!)
      .send({ pwned: 1 })
      .expect(403);
    expect((await request(demo.server).get('/me/data').set(cookie(victim.token)).expect(200)).body).toEqual({});
  });

  it('refuses Sec-Fetch-Site: cross-site even with a valid token; same-origin, same-site and none pass', async () => {
    const { token } = await login(demo.server, 'alice');
    const crossSite = await request(demo.server)
      .patch('/me/data')
      .set(cookie(token))
      .set('Sec-Fetch-Site', 'cross-site')
      .send({ a: 1 })
      .expect(403);
    expect(crossSite.body.reason).toBe('cross_site');
    await request(demo.server)
      .patch('/me/data')
      .set(cookie(token))
      .set('Sec-Fetch-Site', 'Cross-Site ')
      .send({ a: 1 })
      .expect(403);
    await request(demo.server)
      .patch('/me/data')
      .set(cookie(token))
      .set('Sec-Fetch-Site', 'bogus')
      .send({ a: 1 })
      .expect(403);
    for (const site of ['same-origin', 'same-site', 'none']) {
      await request(demo.server)
        .patch('/me/data')
        .set(cookie(token))
        .set('Sec-Fetch-Site', site)
        .send({ a: 1 })
        .expect(200);
    }
  });

  it('accepts only an exact allowed Origin: look-alikes, null, other schemes and ports fail', async () => {
    const { token } = await login(demo.server, 'alice');
    const refused = [
      'null',
      'https://app.example.com.evil.com',
      'https://evil.com',
      'http://app.example.com',
      'https://app.example.com:8443',
      'https://app.example.com/',
      'https://APP.example.com',
      'https://app.example.co',
      'https://xapp.example.com',
      '',
      'https://app.example.com@evil.com',
      'https://evil.com#https://app.example.com',
    ];
    for (const origin of refused) {
      const response = await request(demo.server)
        .patch('/me/data')
        .set(cookie(token))
        .set('Origin', origin)
        .send({ a: 1 });
      expect([origin, response.status, response.body.reason]).toEqual([origin, 403, 'origin_not_allowed']);
    }
    await request(demo.server).patch('/me/data').set(cookie(token)).set('Origin', APP).send({ a: 1 }).expect(200);
    await request(demo.server)
      .patch('/me/data')
      .set(cookie(token))
      .set('Origin', 'http://localhost:3000')
      .send({ a: 1 })
      .expect(200);
  });

  it("without Origin, judges the Referer's origin; with neither (curl, apps), the token alone decides", async () => {
    const { token } = await login(demo.server, 'alice');
    for (const referer of [
      'https://evil.com/form',
      'https://app.example.com.evil.com/',
      'not a url',
      'javascript:alert(1)',
    ]) {
      const response = await request(demo.server)
        .patch('/me/data')
        .set(cookie(token))
        .set('Referer', referer)
        .send({ a: 1 });
      expect([referer, response.status, response.body.reason]).toEqual([referer, 403, 'origin_not_allowed']);
    }
    await request(demo.server)
      .patch('/me/data')
      .set(cookie(token))
      .set('Referer', `${APP}/settings?tab=1`)
      .send({ a: 1 })
      .expect(200);
    // An allowed Referer does not rescue a bad Origin: Origin wins when present.
    await request(demo.server)
      .patch('/me/data')
      .set(cookie(token))
      .set('Origin', 'https://evil.com')
      .set('Referer', `${APP}/`)
      .send({ a: 1 })
      .expect(403);
    await request(demo.server).patch('/me/data').set(cookie(token)).send({ a: 1 }).expect(200);
    await request(demo.server).patch('/me/data').set(bareCookie(token)).send({ a: 1 }).expect(403);
  });

  it('guards login against login CSRF (Origin / Fetch Metadata), creating no session when refused', async () => {
    const count = async () =>
      (
        await demo.db.pool.query(
          `SELECT count(*)::int AS n FROM session_audit_log WHERE event = 'created' AND user_id = 'u-admin'`,
        )
      ).rows[0].n;
    const before = await count();
    const body = { username: 'admin', password: 'admin-password' };
    const evil = await request(demo.server)
      .post('/auth/login')
      .set('Origin', 'https://evil.com')
      .send(body)
      .expect(403);
    expect(evil.body.reason).toBe('origin_not_allowed');
    expect(sessionCookie(evil)).toBeUndefined();
    await request(demo.server).post('/auth/login').set('Sec-Fetch-Site', 'cross-site').send(body).expect(403);
    await request(demo.server).post('/auth/login').set('Origin', 'null').send(body).expect(403);
    await request(demo.server).post('/auth/login').set('Referer', 'https://evil.com/').send(body).expect(403);
    expect(await count()).toBe(before);
    await request(demo.server)
      .post('/auth/login')
      .set('Origin', APP)
      .set('Sec-Fetch-Site', 'same-origin')
      .send(body)
      .expect(200);
    expect(await count()).toBe(before + 1);
  });

  it('lets safe methods through without a token, even cross-site (links and navigations)', async () => {
    const { token } = await createTestSession(demo.app, { userId: 'u-alice' });
    await request(demo.server)
      .get('/me')
      .set(bareCookie(token))
      .set('Sec-Fetch-Site', 'cross-site')
      .set('Origin', 'https://evil.com')
      .expect(200);
    await request(demo.server).head('/me').set(bareCookie(token)).expect(200);
  });

  it('audits failures as csrf_failed: one aggregated row per source and session and window, none per request', async () => {
    const victim = await login(demo.server, 'bob');
    const countRows = async () =>
      (
        await demo.db.pool.query(
          `SELECT count(*)::int AS n FROM session_audit_log WHERE event = 'csrf_failed' AND session_id = $1`,
          [victim.sessionId],
        )
      ).rows[0].n;
    await Promise.all([
      ...Array.from({ length: 20 }, () =>
        request(demo.server).patch('/me/data').set(bareCookie(victim.token)).send({ a: 1 }).expect(403),
      ),
      ...Array.from({ length: 10 }, () =>
        request(demo.server)
          .patch('/me/data')
          .set(cookie(victim.token))
          .set('Origin', 'https://evil.com')
          .send({ a: 1 })
          .expect(403),
      ),
    ]);
    expect(await countRows()).toBe(0); // nothing written while the window is open
    // The window ends (on the app's clock): a sweep writes the row, and two more must not add a second.
    const clock = jest.spyOn(Date, 'now').mockReturnValue(Date.now() + 60_000 + 100);
    try {
      for (let sweep = 0; sweep < 3; sweep++) await demo.app.get(AggregatedAuditLog).flush();
    } finally {
      clock.mockRestore();
    }
    const { rows } = await demo.db.pool.query(
      `SELECT user_id, ip, details FROM session_audit_log WHERE event = 'csrf_failed' AND session_id = $1`,
      [victim.sessionId],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      user_id: 'u-bob',
      ip: expect.stringMatching(/127\.0\.0\.1/),
      details: {
        count: 30,
        reasons: { csrf_token_missing: 20, origin_not_allowed: 10 },
        origins: ['https://evil.com'],
      },
    });
  });
});

describe.each(ADAPTERS)('CSRF token rotation (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    // The rotation is brought due by moving rotated_at in SQL; the cache is off so the next request sees it.
    demo = await startDemo(adapter, {
      SESSION_ROTATION_INTERVAL: '1h',
      SESSION_ROTATION_GRACE: '1m',
      SESSION_CACHE: 'off',
    });
  });
  afterAll(async () => demo?.close());

  it('rotates the CSRF token with the session token; the new pair arrives in the same response', async () => {
    const { token: first, csrfToken: firstCsrf, sessionId } = await login(demo.server, 'alice');
    await demo.db.pool.query(`UPDATE user_sessions SET rotated_at = now() - interval '1 hour' WHERE id = $1`, [
      sessionId,
    ]);
    const rotating = await request(demo.server).get('/me').set(cookie(first)).expect(200);
    const second = sessionCookie(rotating)!;
    expect(second).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const secondCsrf = csrfCookie(rotating);
    expect(secondCsrf).toBe(rotating.body.csrfToken);
    expect(secondCsrf).not.toBe(firstCsrf);
    // The old CSRF token does not work with the new cookie...
    const stale = await request(demo.server)
      .patch('/me/data')
      .set(bareCookie(second))
      .set('x-csrf-token', firstCsrf!)
      .send({ a: 1 })
      .expect(403);
    expect(stale.body.reason).toBe('csrf_token_invalid');
    await request(demo.server)
      .patch('/me/data')
      .set(bareCookie(second))
      .set('x-csrf-token', secondCsrf!)
      .send({ a: 1 })
      .expect(200);
    // ...while an in-flight request with the old pair still works during the grace window.
    await request(demo.server)
      .patch('/me/data')
      .set(bareCookie(first))
      .set('x-csrf-token', firstCsrf!)
      .send({ b: 1 })
      .expect(200);
  });

  it('clears the CSRF cookie with the session cookie on logout', async () => {
    const { token } = await login(demo.server, 'bob');
    const out = await request(demo.server).post('/auth/logout').set(cookie(token)).expect(204);
    expect(csrfCookie(out)).toBe('');
    expect(csrfCookieLine(out)).toMatch(/Max-Age=0/);
  });
});

describe.each(ADAPTERS)('no CSRF machinery for bearer sessions (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_TRANSPORT: 'bearer' });
  });
  afterAll(async () => demo?.close());

  it('accepts unsafe bearer requests without a CSRF header and sends no CSRF token or cookie', async () => {
    const response = await request(demo.server)
      .post('/auth/login')
      .send({ username: 'bob', password: 'bob-password' })
      .expect(200);
    expect(response.body.csrfToken).toBeUndefined();
    expect(response.headers['set-cookie']).toBeUndefined();
    const auth = { Authorization: `Bearer ${response.body.token}` };
    await request(demo.server).patch('/me/data').set(auth).send({ a: 1 }).expect(200);
    expect((await request(demo.server).get('/me').set(auth).expect(200)).body.csrfToken).toBeUndefined();
  });
});
