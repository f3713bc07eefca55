import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ADAPTERS, cookie, login, sessionCookie, startDemo, type RunningDemo } from '../support/demo.js';

const MAX = 3;
const password = (username: string) => ({ username, password: `${username}-password` });

async function liveSessionIds(demo: RunningDemo, userId: string): Promise<string[]> {
  const { rows } = await demo.db.pool.query(
    `SELECT id FROM user_sessions WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()`,
    [userId],
  );
  return rows.map((row) => row.id);
}

async function revokedReasons(demo: RunningDemo, userId: string, reason: string): Promise<number> {
  const { rows } = await demo.db.pool.query(
    `SELECT count(*)::int AS n FROM session_audit_log WHERE event = 'revoked' AND user_id = $1 AND details->>'reason' = $2`,
    [userId, reason],
  );
  return rows[0].n;
}

describe.each(ADAPTERS)('per-user session limit, evict-oldest (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_MAX_PER_USER: String(MAX) });
  });
  afterAll(async () => demo?.close());

  it('keeps the newest sessions: older ones are revoked (401 revoked) and audited limit_evicted', async () => {
    const logins = [];
    for (let i = 0; i < MAX + 2; i++) logins.push(await login(demo.server, 'bob'));
    for (const evicted of logins.slice(0, 2)) {
      expect((await request(demo.server).get('/me').set(cookie(evicted.token)).expect(401)).body.reason).toBe(
        'revoked',
      );
    }
    for (const kept of logins.slice(2)) await request(demo.server).get('/me').set(cookie(kept.token)).expect(200);
    expect((await liveSessionIds(demo, 'u-bob')).sort()).toEqual(
      logins
        .slice(2)
        .map((l) => l.sessionId)
        .sort(),
    );
    const { rows } = await demo.db.pool.query(
      `SELECT session_id, actor_id FROM session_audit_log WHERE event = 'revoked' AND details->>'reason' = 'limit_evicted' ORDER BY id`,
    );
    expect(rows).toEqual(logins.slice(0, 2).map((l) => ({ session_id: l.sessionId, actor_id: 'u-bob' })));
  });

  it('never exceeds the limit under parallel logins of one user', async () => {
    const results = await Promise.all(
      Array.from({ length: 16 }, () => request(demo.server).post('/auth/login').send(password('alice'))),
    );
    expect(results.map((r) => r.status)).toEqual(Array(16).fill(200));
    expect(await liveSessionIds(demo, 'u-alice')).toHaveLength(MAX);
    expect(await revokedReasons(demo, 'u-alice', 'limit_evicted')).toBe(16 - MAX);
    const working = await Promise.all(
      results.map((r) =>
        request(demo.server)
          .get('/me')
          .set(cookie(sessionCookie(r)!)),
      ),
    );
    expect(working.filter((r) => r.status === 200)).toHaveLength(MAX);
  });

  it('does not evict an extra session when a login replaces the session its cookie carried', async () => {
    const sessions = [];
    for (let i = 0; i < MAX; i++) sessions.push(await login(demo.server, 'admin'));
    const evictedBefore = await revokedReasons(demo, 'u-admin', 'limit_evicted');
    const relogin = await login(demo.server, 'admin', cookie(sessions[2].token));
    expect(await revokedReasons(demo, 'u-admin', 'limit_evicted')).toBe(evictedBefore);
    expect((await liveSessionIds(demo, 'u-admin')).sort()).toEqual(
      [sessions[0].sessionId, sessions[1].sessionId, relogin.sessionId].sort(),
    );
  });
});

describe.each(ADAPTERS)('per-user session limit, reject (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_MAX_PER_USER: String(MAX), SESSION_LIMIT_POLICY: 'reject' });
  });
  afterAll(async () => demo?.close());

  it('lets exactly MAX of many parallel logins in; the rest get 409 with a clear message and write nothing', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => request(demo.server).post('/auth/login').send(password('bob'))),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([...Array(MAX).fill(200), ...Array(10 - MAX).fill(409)]);
    const refused = results.find((r) => r.status === 409)!;
    expect(refused.body).toMatchObject({
      statusCode: 409,
      reason: 'session_limit',
      message: expect.stringContaining(`already has ${MAX} active sessions`),
    });
    expect(sessionCookie(refused)).toBeUndefined();
    expect(await liveSessionIds(demo, 'u-bob')).toHaveLength(MAX);
    const created = await demo.db.pool.query(
      `SELECT count(*)::int AS n FROM session_audit_log WHERE event = 'created' AND user_id = 'u-bob'`,
    );
    expect(created.rows[0].n).toBe(MAX);

    // Logging out somewhere frees a place.
    const one = results.find((r) => r.status === 200)!;
    await request(demo.server)
      .post('/auth/logout')
      .set(cookie(sessionCookie(one)!))
      .expect(204);
    await login(demo.server, 'bob');
    await request(demo.server).post('/auth/login').send(password('bob')).expect(409);
  });

  it('counts only live sessions: expired or revoked ones do not use up the limit', async () => {
    const sessions = [];
    for (let i = 0; i < MAX; i++) sessions.push(await login(demo.server, 'alice'));
    await request(demo.server).post('/auth/login').send(password('alice')).expect(409);
    await request(demo.server).delete(`/sessions/${sessions[0].sessionId}`).set(cookie(sessions[1].token)).expect(204);
    await demo.db.pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
      sessions[1].sessionId,
    ]);
    await login(demo.server, 'alice');
    await login(demo.server, 'alice');
    await request(demo.server).post('/auth/login').send(password('alice')).expect(409);
  });
});

describe.each(ADAPTERS)('step-up: fresh session for sensitive actions, password change (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    // Sessions are made stale by moving authenticated_at in SQL; the cache is off so that the
    // next request reads the moved row.
    demo = await startDemo(adapter, { SESSION_FRESH_AGE: '10m', SESSION_CACHE: 'off' });
  });
  afterAll(async () => demo?.close());
  /** These sessions last authenticated longer ago than the step-up age. */
  const authenticatedLongAgo = (...sessionIds: string[]) =>
    demo.db.pool.query(`UPDATE user_sessions SET authenticated_at = now() - interval '11 minutes' WHERE id = ANY($1)`, [
      sessionIds,
    ]);

  const changePassword = (token: string, currentPassword: string, newPassword: string) =>
    request(demo.server).post('/me/password').set(cookie(token)).send({ currentPassword, newPassword });

  it('requires a recent authentication; re-authentication refreshes it and rotates the token', async () => {
    const device = await login(demo.server, 'alice');
    const otherDevice = await login(demo.server, 'alice');
    const current = await login(demo.server, 'alice');
    await authenticatedLongAgo(device.sessionId, otherDevice.sessionId, current.sessionId);

    const stale = await changePassword(current.token, 'alice-password', 'new-alice-password').expect(401);
    expect(stale.body).toMatchObject({ statusCode: 401, reason: 'reauth_required' });
    expect(sessionCookie(stale)).toBeUndefined(); // the session is still fine for everything else
    await request(demo.server).get('/me').set(cookie(current.token)).expect(200);

    await request(demo.server)
      .post('/auth/reauthenticate')
      .set(cookie(current.token))
      .send({ password: 'wrong' })
      .expect(403);
    await changePassword(current.token, 'alice-password', 'new-alice-password').expect(401);

    const {
      rows: [before],
    } = await demo.db.pool.query('SELECT authenticated_at FROM user_sessions WHERE id = $1', [current.sessionId]);
    const reauth = await request(demo.server)
      .post('/auth/reauthenticate')
      .set(cookie(current.token))
      .send({ password: 'alice-password' })
      .expect(200);
    const fresh = sessionCookie(reauth)!;
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fresh).not.toBe(current.token);
    expect(reauth.body.csrfToken).toBeDefined();
    expect(reauth.body.csrfToken).not.toBe(current.csrfToken);
    const {
      rows: [after],
    } = await demo.db.pool.query('SELECT authenticated_at FROM user_sessions WHERE id = $1', [current.sessionId]);
    expect(after.authenticated_at.getTime()).toBeGreaterThan(before.authenticated_at.getTime());
    const { rows: rotations } = await demo.db.pool.query(
      `SELECT details FROM session_audit_log WHERE event = 'rotated' AND session_id = $1`,
      [current.sessionId],
    );
    expect(rotations.map((r) => r.details.reason)).toEqual(['reauthenticated']);

    // Whoever kept the token from before the step-up gets nothing from it: a step-up drops the
    // old token at once (no grace window), so it cannot ride the freshly authenticated session.
    expect((await changePassword(current.token, 'alice-password', 'attacker-password').expect(401)).body.reason).toBe(
      'invalid',
    );
    expect((await request(demo.server).get('/me').set(cookie(current.token)).expect(401)).body.reason).toBe('invalid');

    await changePassword(fresh, 'wrong-password', 'new-alice-password').expect(403);
    const changed = await changePassword(fresh, 'alice-password', 'new-alice-password').expect(200);
    expect(changed.body).toEqual({ revokedOtherSessions: 2 });
    for (const other of [device, otherDevice]) {
      expect((await request(demo.server).get('/me').set(cookie(other.token)).expect(401)).body.reason).toBe('revoked');
    }
    await request(demo.server).get('/me').set(cookie(fresh)).expect(200);
    expect(await revokedReasons(demo, 'u-alice', 'password_change')).toBe(2);
    const {
      rows: [summary],
    } = await demo.db.pool.query(
      `SELECT details FROM session_audit_log WHERE event = 'revoked_all' AND user_id = 'u-alice'`,
    );
    expect(summary.details).toMatchObject({ reason: 'password_change', count: 2, except: current.sessionId });

    await request(demo.server).post('/auth/login').send({ username: 'alice', password: 'alice-password' }).expect(401);
    await request(demo.server)
      .post('/auth/login')
      .send({ username: 'alice', password: 'new-alice-password' })
      .expect(200);
  });

  it('asks for a recent authentication before ending other sessions (view stays open)', async () => {
    const other = await login(demo.server, 'admin');
    const current = await login(demo.server, 'admin');
    await authenticatedLongAgo(other.sessionId, current.sessionId);
    await request(demo.server).get('/sessions').set(cookie(current.token)).expect(200);
    expect(
      (await request(demo.server).delete(`/sessions/${other.sessionId}`).set(cookie(current.token)).expect(401)).body
        .reason,
    ).toBe('reauth_required');
    expect(
      (await request(demo.server).post('/sessions/revoke-others').set(cookie(current.token)).expect(401)).body.reason,
    ).toBe('reauth_required');
    await request(demo.server).get('/me').set(cookie(other.token)).expect(200);
    const reauth = await request(demo.server)
      .post('/auth/reauthenticate')
      .set(cookie(current.token))
      .send({ password: 'admin-password' })
      .expect(200);
    await request(demo.server)
      .delete(`/sessions/${other.sessionId}`)
      .set(cookie(sessionCookie(reauth)!))
      .expect(204);
    await request(demo.server).get('/me').set(cookie(other.token)).expect(401);
  });

  it('treats a new login as fresh, and refuses the step-up routes without a session or CSRF token', async () => {
    const { token } = await login(demo.server, 'bob');
    await request(demo.server)
      .post('/me/password')
      .send({ currentPassword: 'bob-password', newPassword: 'x'.repeat(12) })
      .expect(401);
    await request(demo.server)
      .post('/me/password')
      .set('Cookie', cookie(token).Cookie)
      .send({ currentPassword: 'bob-password', newPassword: 'x'.repeat(12) })
      .expect(403);
    await request(demo.server)
      .post('/auth/reauthenticate')
      .set('Cookie', cookie(token).Cookie)
      .send({ password: 'bob-password' })
      .expect(403);
    await changePassword(token, 'bob-password', 'short').expect(400);
    await changePassword(token, 'bob-password', 'bob-new-password').expect(200);
  });
});
