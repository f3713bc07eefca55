import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { METRICS_SQL } from '../../src/session/metrics/metrics.sql.js';
import { SessionPurgeService } from '../../src/session/index.js';
import { AggregatedAuditLog } from '../../src/session/security/aggregated-audit.js';
import {
  ADAPTERS,
  bareCookie,
  cookie,
  sessionCookie,
  setCookieLine,
  startDemo,
  type RunningDemo,
} from '../support/demo.js';

const maxAgeOf = (line: string | undefined) => Number(/Max-Age=(\d+)/.exec(line ?? '')?.[1]);
const count = async (demo: RunningDemo, sql: string, values: unknown[] = []) =>
  (await demo.db.pool.query(`SELECT count(*)::int AS n FROM ${sql}`, values)).rows[0].n as number;

/** A visitor's first write: no cookie; answers the guest's cookie and CSRF token. */
async function startGuest(demo: RunningDemo, items: Record<string, unknown> = { apples: 2 }) {
  const response = await request(demo.server).patch('/cart').send(items).expect(200);
  const token = sessionCookie(response)!;
  expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const { rows } = await demo.db.pool.query(
    `SELECT id FROM user_sessions WHERE user_id IS NULL ORDER BY created_at DESC LIMIT 1`,
  );
  return { response, token, sessionId: rows[0].id as string, csrfToken: response.body.csrfToken as string };
}

const loginWith = (demo: RunningDemo, headers: Record<string, string>, username = 'alice') =>
  request(demo.server)
    .post('/auth/login')
    .set(headers)
    .send({ username, password: `${username}-password` })
    .expect(200);

describe.each(ADAPTERS)('guest sessions in the demo (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    // A creation limit no test here reaches (the flood has its own app below); no cache, so rows moved by hand count.
    demo = await startDemo(adapter, { SESSION_GUEST_CREATE_LIMIT: '1000', SESSION_CACHE: 'off', PURGE_CRON: 'off' });
  });
  afterAll(async () => demo?.close());

  it('10,000 reads of GET /cart without a session create no row, no cookie and no audit row', async () => {
    await demo.app.listen(0, '127.0.0.1');
    const url = `${await demo.app.getUrl()}/cart`.replace('[::1]', '127.0.0.1');
    let cookies = 0;
    // A keep-alive connection the server closed just as a request went out is retried, as browsers
    // retry an idempotent GET: the count of rows is the assertion, not the transport.
    const read = async (attempt = 1): Promise<[number, unknown]> => {
      try {
        const response = await fetch(url);
        if (response.headers.get('set-cookie')) cookies++;
        return [response.status, await response.json()];
      } catch (error) {
        if (attempt >= 3) throw error;
        return read(attempt + 1);
      }
    };
    for (let batch = 0; batch < 200; batch++) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => read()));
      for (const answer of answers) expect(answer).toEqual([200, {}]);
    }
    expect(cookies).toBe(0);
    expect(await count(demo, 'user_sessions')).toBe(0);
    expect(await count(demo, 'session_audit_log')).toBe(0);
  }, 300_000); // 10,000 requests on a busy 2-core machine: no assertion depends on how fast they go

  it('the first PATCH starts a guest session: guest lifetime, no user, its own Max-Age, audited guest_created', async () => {
    const { response, token, sessionId } = await startGuest(demo);
    expect(response.body).toEqual({ cart: { apples: 2 }, csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(maxAgeOf(setCookieLine(response))).toBe(6 * 3600); // guests.absoluteTimeout default
    const { rows } = await demo.db.pool.query(
      `SELECT user_id, lifetime, data, extract(epoch FROM idle_expires_at - now())::int AS idle FROM user_sessions WHERE id = $1`,
      [sessionId],
    );
    expect(rows[0]).toMatchObject({ user_id: null, lifetime: 'guest', data: { cart: { apples: 2 } } });
    expect(rows[0].idle).toBeLessThanOrEqual(20 * 60);
    const audit = await demo.db.pool.query(`SELECT event, user_id FROM session_audit_log WHERE session_id = $1`, [
      sessionId,
    ]);
    expect(audit.rows).toEqual([{ event: 'guest_created', user_id: null }]);
    const cart = await request(demo.server).get('/cart').set(bareCookie(token)).expect(200);
    expect(cart.body).toEqual({ apples: 2 });
  });

  it("later writes need the guest session's own CSRF token, as a user's do", async () => {
    const { token, sessionId } = await startGuest(demo);
    const missing = await request(demo.server).patch('/cart').set(bareCookie(token)).send({ pears: 1 }).expect(403);
    expect(missing.body.reason).toBe('csrf_token_missing');
    const wrong = await request(demo.server)
      .patch('/cart')
      .set({ ...bareCookie(token), 'x-csrf-token': 'A'.repeat(43) })
      .send({ pears: 1 })
      .expect(403);
    expect(wrong.body.reason).toBe('csrf_token_invalid');
    const ok = await request(demo.server).patch('/cart').set(cookie(token)).send({ pears: 1 }).expect(200);
    expect(ok.body.cart).toEqual({ apples: 2, pears: 1 });
    expect(sessionCookie(ok)).toBeUndefined(); // the same session, no new cookie
    expect(await count(demo, 'user_sessions WHERE id = $1', [sessionId])).toBe(1);
  });

  it('a cross-site first write is refused by the origin checks and creates nothing', async () => {
    const before = await count(demo, 'user_sessions');
    const crossSite = await request(demo.server)
      .patch('/cart')
      .set('Sec-Fetch-Site', 'cross-site')
      .send({ x: 1 })
      .expect(403);
    expect(crossSite.body.reason).toBe('cross_site');
    const foreign = await request(demo.server)
      .patch('/cart')
      .set('Origin', 'https://evil.example')
      .send({ x: 1 })
      .expect(403);
    expect(foreign.body.reason).toBe('origin_not_allowed');
    expect(await count(demo, 'user_sessions')).toBe(before);
  });

  it('a guest is not a user: every guarded route answers 401, writes included', async () => {
    const { token } = await startGuest(demo);
    for (const path of ['/me', '/me/data', '/sessions']) {
      const refused = await request(demo.server).get(path).set(cookie(token)).expect(401);
      expect(refused.body.reason).toBe('missing');
    }
    await request(demo.server).patch('/me/data').set(cookie(token)).send({ role: 'admin' }).expect(401);
    await request(demo.server).post('/auth/logout').set(cookie(token)).expect(401);
    await request(demo.server).get('/admin/sessions/audit').set(cookie(token)).expect(401);
  });

  it("a guest's data is capped at guests.maxDataBytes (4096), and an oversized first write creates nothing", async () => {
    const before = await count(demo, 'user_sessions');
    await request(demo.server)
      .patch('/cart')
      .send({ note: 'x'.repeat(5_000) })
      .expect(413);
    expect(await count(demo, 'user_sessions')).toBe(before);
    const { token } = await startGuest(demo);
    await request(demo.server)
      .patch('/cart')
      .set(cookie(token))
      .send({ note: 'x'.repeat(5_000) })
      .expect(413);
  });

  it('login with the guest cookie carries the cart into the user session; the guest token is dead at once', async () => {
    const guest = await startGuest(demo, { apples: 3 });
    await request(demo.server).patch('/cart').set(cookie(guest.token)).send({ milk: 1 }).expect(200);
    const login = await loginWith(demo, bareCookie(guest.token));
    const userToken = sessionCookie(login)!;
    const data = await request(demo.server).get('/me/data').set(cookie(userToken)).expect(200);
    expect(data.body).toEqual({ cart: { apples: 3, milk: 1 } });
    // The guest token: no session on guest routes, 401 'revoked' on guarded ones.
    expect((await request(demo.server).get('/cart').set(bareCookie(guest.token)).expect(200)).body).toEqual({});
    const replayed = await request(demo.server).get('/me').set(cookie(guest.token)).expect(401);
    expect(replayed.body.reason).toBe('revoked');
    const write = await request(demo.server).patch('/cart').set(cookie(guest.token)).send({ stolen: 1 });
    expect(write.status).toBe(200); // a fresh guest, not the old one: the user's cart is untouched
    expect((await request(demo.server).get('/me/data').set(cookie(userToken))).body).toEqual({
      cart: { apples: 3, milk: 1 },
    });
    const { rows } = await demo.db.pool.query(
      `SELECT revoked_at IS NOT NULL AS revoked, revoke_reason, data FROM user_sessions WHERE id = $1`,
      [guest.sessionId],
    );
    expect(rows[0]).toEqual({ revoked: true, revoke_reason: 'guest_upgraded', data: {} });
    const audit = await demo.db.pool.query(
      `SELECT event, session_id, user_id, details FROM session_audit_log WHERE event = 'guest_upgraded' AND session_id = $1`,
      [guest.sessionId],
    );
    expect(audit.rows).toEqual([
      {
        event: 'guest_upgraded',
        session_id: guest.sessionId,
        user_id: 'u-alice',
        details: { guestSessionId: guest.sessionId, sessionId: login.body.sessionId },
      },
    ]);
  });

  it("a user's PATCH /cart writes the user's own session; GET /cart reads it", async () => {
    const login = await loginWith(demo, {});
    const token = sessionCookie(login)!;
    const patched = await request(demo.server).patch('/cart').set(cookie(token)).send({ tea: 1 }).expect(200);
    expect(patched.body.cart).toEqual({ tea: 1 });
    expect(sessionCookie(patched)).toBeUndefined();
    expect((await request(demo.server).get('/cart').set(cookie(token))).body).toEqual({ tea: 1 });
    expect((await request(demo.server).get('/me/data').set(cookie(token))).body).toEqual({ cart: { tea: 1 } });
  });

  it('guests never count as users: device lists, revoke-all, admin lists and the active-sessions gauge skip them', async () => {
    const guest = await startGuest(demo);
    const login = await loginWith(demo, {}, 'bob');
    const bob = sessionCookie(login)!;
    const devices = await request(demo.server).get('/sessions').set(cookie(bob)).expect(200);
    expect(devices.body.map((s: { id: string }) => s.id)).not.toContain(guest.sessionId);
    const live = await demo.db.pool.query(METRICS_SQL.countActiveSessions.text);
    const users = await count(
      demo,
      `user_sessions WHERE user_id IS NOT NULL AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()`,
    );
    expect(live.rows[0].n).toBe(users);
    expect(await count(demo, `user_sessions WHERE user_id IS NULL AND revoked_at IS NULL`)).toBeGreaterThan(0);
    // An admin revoking "all sessions of user X" for any X never reaches a guest.
    const admin = sessionCookie(await loginWith(demo, {}, 'admin'))!;
    await request(demo.server).delete('/admin/users/u-bob/sessions').set(cookie(admin)).expect(200);
    expect(await count(demo, `user_sessions WHERE id = $1 AND revoked_at IS NULL`, [guest.sessionId])).toBe(1);
    // The admin audit query takes the guest events.
    const audit = await request(demo.server)
      .get(`/admin/sessions/audit?sessionId=${guest.sessionId}&events=guest_created,guest_upgraded`)
      .set(cookie(admin))
      .expect(200);
    expect(audit.body.items.map((row: { event: string }) => row.event)).toEqual(['guest_created']);
  });

  it('a touch extends a guest by the guest idle timeout; expiry and the purge end guests like any session', async () => {
    const { token, sessionId } = await startGuest(demo);
    await demo.db.pool.query(
      `UPDATE user_sessions SET last_seen_at = now() - interval '10 minutes', idle_expires_at = now() + interval '1 minute' WHERE id = $1`,
      [sessionId],
    );
    await request(demo.server).get('/cart').set(bareCookie(token)).expect(200);
    const { rows } = await demo.db.pool.query(
      `SELECT extract(epoch FROM idle_expires_at - now())::int AS idle FROM user_sessions WHERE id = $1`,
      [sessionId],
    );
    expect(rows[0].idle).toBeGreaterThan(20 * 60 - 60);
    expect(rows[0].idle).toBeLessThanOrEqual(20 * 60);

    await demo.db.pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
      sessionId,
    ]);
    expect((await request(demo.server).get('/cart').set(bareCookie(token)).expect(200)).body).toEqual({});
    expect(await count(demo, 'user_sessions WHERE id = $1', [sessionId])).toBe(0);

    const other = await startGuest(demo);
    await demo.db.pool.query(
      `UPDATE user_sessions SET absolute_expires_at = now() - interval '1 second' WHERE id = $1`,
      [other.sessionId],
    );
    await demo.app.get(SessionPurgeService).runOnce();
    expect(await count(demo, 'user_sessions WHERE id = $1', [other.sessionId])).toBe(0);
    expect(await count(demo, `session_audit_log WHERE event = 'purged' AND session_id = $1`, [other.sessionId])).toBe(
      1,
    );
  });
});

describe.each(ADAPTERS)('guest-creation flood from one source (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_GUEST_CREATE_LIMIT: '3', SESSION_GUEST_CREATE_WINDOW: '1h' });
  });
  afterAll(async () => demo?.close());

  it('starts guests.createLimit guest sessions per window, then answers 429 with Retry-After and writes nothing', async () => {
    for (let i = 0; i < 3; i++) await request(demo.server).patch('/cart').send({ i }).expect(200);
    for (let i = 0; i < 20; i++) {
      const refused = await request(demo.server).patch('/cart').send({ i }).expect(429);
      expect(refused.body.reason).toBe('too_many_guest_sessions');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(3000);
      expect(sessionCookie(refused)).toBeUndefined();
    }
    expect(await count(demo, 'user_sessions')).toBe(3);
    expect(await count(demo, `session_audit_log WHERE event = 'guest_created'`)).toBe(3);
    // Reads and logins are not limited by it.
    await request(demo.server).get('/cart').expect(200);
    await loginWith(demo, {});
    // The refusals are audited as one aggregated row for the source, not one per request.
    await demo.app.get(AggregatedAuditLog).flush({ all: true });
    const { rows } = await demo.db.pool.query(
      `SELECT details->'count' AS count, details->'reasons' AS reasons FROM session_audit_log WHERE event = 'guest_limited'`,
    );
    expect(rows).toEqual([{ count: 20, reasons: { blocked: 20 } }]);
  });
});

describe('guest sessions with the bearer transport', () => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo('express', { SESSION_TRANSPORT: 'bearer' });
  });
  afterAll(async () => demo?.close());

  it('hands the guest token in the session-token header, and login with it carries the cart', async () => {
    const started = await request(demo.server).patch('/cart').send({ apples: 1 }).expect(200);
    const guest = started.headers['session-token'] as string;
    expect(guest).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(started.body).toEqual({ cart: { apples: 1 } }); // no CSRF token: bearer requests need none
    const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
    await request(demo.server).patch('/cart').set(bearer(guest)).send({ pears: 2 }).expect(200);
    expect((await request(demo.server).get('/me').set(bearer(guest)).expect(401)).body.reason).toBe('missing');
    const login = await loginWith(demo, bearer(guest));
    const data = await request(demo.server).get('/me/data').set(bearer(login.body.token)).expect(200);
    expect(data.body).toEqual({ cart: { apples: 1, pears: 2 } });
    expect((await request(demo.server).get('/me').set(bearer(guest)).expect(401)).body.reason).toBe('revoked');
  });
});
