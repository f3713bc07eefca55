import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import request from 'supertest';
import { createTestSession } from '../../src/session/testing/index.js';
import { generateToken } from '../../src/session/token/session-token.js';
import {
  ADAPTERS,
  cookie,
  login,
  SID,
  sessionCookie,
  setCookieLine,
  startDemo,
  type RunningDemo,
} from '../support/demo.js';

describe.each(ADAPTERS)('demo app sessions over HTTP (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter);
  });
  afterAll(async () => demo?.close());

  const auditCount = async (event: string, sessionId: string) =>
    (
      await demo.db.pool.query(
        'SELECT count(*)::int AS n FROM session_audit_log WHERE event = $1 AND session_id = $2',
        [event, sessionId],
      )
    ).rows[0].n;

  it('logs in with a hardened cookie and no token in the body', async () => {
    const { response, token, sessionId } = await login(demo.server);
    expect(response.body).toEqual({
      userId: 'u-alice',
      sessionId,
      expiresAt: expect.any(String),
      lifetime: 'default',
      csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    expect(JSON.stringify(response.body)).not.toContain(token);
    const line = setCookieLine(response)!;
    expect(line).toMatch(/; HttpOnly/);
    expect(line).toMatch(/; Secure/);
    expect(line).toMatch(/; SameSite=Lax/);
    expect(line).toMatch(/; Path=\/(;|$)/);
    expect(line).not.toMatch(/Domain=/i);
    const maxAge = Number(/Max-Age=(\d+)/.exec(line)![1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(12 * 3600);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const me = await request(demo.server).get('/me').set(cookie(token)).expect(200);
    expect(me.body).toMatchObject({ userId: 'u-alice', sessionId });
    expect(me.headers['cache-control']).toBe('no-store'); // personal data: no shared cache may keep it
  });

  it('stores only SHA-256 of the token, never the token', async () => {
    const { token, sessionId } = await login(demo.server);
    const { rows } = await demo.db.pool.query(
      'SELECT token_hash, to_jsonb(s)::text AS whole FROM user_sessions s WHERE id = $1',
      [sessionId],
    );
    expect(Buffer.compare(rows[0].token_hash, createHash('sha256').update(token).digest())).toBe(0);
    expect(rows[0].whole).not.toContain(token);
    const audit = await demo.db.pool.query("SELECT string_agg(to_jsonb(a)::text, '') AS all FROM session_audit_log a");
    expect(audit.rows[0].all).not.toContain(token);
    expect(audit.rows[0].all).not.toContain(createHash('sha256').update(token).digest('hex'));
  });

  it('refuses bad credentials and invalid login bodies', async () => {
    await request(demo.server).post('/auth/login').send({ username: 'alice', password: 'wrong' }).expect(401);
    await request(demo.server).post('/auth/login').send({ username: 'nobody', password: 'x' }).expect(401);
    await request(demo.server).post('/auth/login').send({ username: 'alice' }).expect(400);
    await request(demo.server)
      .post('/auth/login')
      .send({ username: 'alice', password: 'alice-password', admin: true })
      .expect(400);
    await request(demo.server)
      .post('/auth/login')
      .send({ username: ['alice'], password: 'alice-password' })
      .expect(400);
  });

  it('answers 401 with a reason: missing, invalid', async () => {
    const missing = await request(demo.server).get('/me').expect(401);
    expect(missing.body).toMatchObject({ statusCode: 401, reason: 'missing' });
    const garbage = await request(demo.server).get('/me').set('Cookie', `${SID}=not-a-token`).expect(401);
    expect(garbage.body.reason).toBe('invalid');
    const unknown = await request(demo.server).get('/me').set(cookie(generateToken())).expect(401);
    expect(unknown.body.reason).toBe('invalid');
    // Not cleared: a refusal may land after a response that set a newer cookie.
    expect(sessionCookie(unknown)).toBeUndefined();
  });

  it('never reads the token from the query string', async () => {
    const { token } = await createTestSession(demo.app, { userId: 'u-alice' });
    const response = await request(demo.server)
      .get(`/me?${SID}=${token}&token=${token}&access_token=${token}`)
      .expect(401);
    expect(response.body.reason).toBe('missing');
  });

  it('defends against fixation: a planted token is replaced, and stays useless', async () => {
    const planted = generateToken();
    const { token, response } = await login(demo.server, 'alice', cookie(planted));
    expect(token).not.toBe(planted);
    expect(sessionCookie(response)).toBe(token);
    await request(demo.server).get('/me').set(cookie(planted)).expect(401);
    await request(demo.server).get('/me').set(cookie(token)).expect(200);
  });

  it("defends against fixation with a real planted session: the attacker's session is revoked", async () => {
    const attacker = await login(demo.server, 'bob');
    const victim = await login(demo.server, 'alice', cookie(attacker.token));
    expect(victim.token).not.toBe(attacker.token);
    expect(victim.sessionId).not.toBe(attacker.sessionId);
    const replay = await request(demo.server).get('/me').set(cookie(attacker.token)).expect(401);
    expect(replay.body.reason).toBe('revoked');
    const me = await request(demo.server).get('/me').set(cookie(victim.token)).expect(200);
    expect(me.body.userId).toBe('u-alice');
    const { rows } = await demo.db.pool.query(
      `SELECT details FROM session_audit_log WHERE event = 'revoked' AND session_id = $1`,
      [attacker.sessionId],
    );
    expect(rows).toEqual([{ details: { reason: 'fixation' } }]);
  });

  it('logs out: row deleted, cookie cleared, Clear-Site-Data sent, replay refused', async () => {
    const { token, sessionId } = await login(demo.server);
    const out = await request(demo.server).post('/auth/logout').set(cookie(token)).expect(204);
    expect(sessionCookie(out)).toBe('');
    expect(setCookieLine(out)).toMatch(/Max-Age=0/);
    expect(out.headers['clear-site-data']).toBe('"cookies"');
    expect(out.headers['cache-control']).toBe('no-store');
    expect((await demo.db.pool.query('SELECT 1 FROM user_sessions WHERE id = $1', [sessionId])).rowCount).toBe(0);
    expect(await auditCount('logout', sessionId)).toBe(1);
    const replay = await request(demo.server).get('/me').set(cookie(token)).expect(401);
    expect(replay.body.reason).toBe('invalid');
    await request(demo.server).post('/auth/logout').set(cookie(token)).expect(401);
  });

  it("lists my sessions without tokens, revokes one of mine, 404s for anyone else's", async () => {
    const first = await login(demo.server, 'bob');
    const second = await login(demo.server, 'bob');
    const other = await login(demo.server, 'alice');
    const list = await request(demo.server).get('/sessions').set(cookie(second.token)).expect(200);
    const ids = list.body.map((s: { id: string }) => s.id);
    expect(ids).toEqual(expect.arrayContaining([first.sessionId, second.sessionId]));
    expect(ids).not.toContain(other.sessionId);
    expect(list.body.find((s: { id: string }) => s.id === second.sessionId).current).toBe(true);
    expect(list.body.find((s: { id: string }) => s.id === first.sessionId).current).toBe(false);
    expect(JSON.stringify(list.body)).not.toContain(first.token);
    expect(Object.keys(list.body[0]).sort()).toEqual([
      'createdAt',
      'current',
      'expiresAt',
      'id',
      'ip',
      'lastSeenAt',
      'lifetime',
      'userAgent',
    ]);

    await request(demo.server).delete(`/sessions/${other.sessionId}`).set(cookie(second.token)).expect(404);
    await request(demo.server).get('/me').set(cookie(other.token)).expect(200);
    await request(demo.server).delete('/sessions/not-a-uuid').set(cookie(second.token)).expect(404);
    await request(demo.server).delete(`/sessions/${first.sessionId}`).set(cookie(second.token)).expect(204);
    const revoked = await request(demo.server).get('/me').set(cookie(first.token)).expect(401);
    expect(revoked.body.reason).toBe('revoked');
  });

  it('revokes all my other sessions but keeps the current one', async () => {
    const a = await login(demo.server, 'admin');
    const b = await login(demo.server, 'admin');
    const c = await login(demo.server, 'admin');
    const result = await request(demo.server).post('/sessions/revoke-others').set(cookie(c.token)).expect(201);
    expect(result.body.revoked).toBeGreaterThanOrEqual(2);
    await request(demo.server).get('/me').set(cookie(a.token)).expect(401);
    await request(demo.server).get('/me').set(cookie(b.token)).expect(401);
    await request(demo.server).get('/me').set(cookie(c.token)).expect(200);
    const { rows } = await demo.db.pool.query(
      `SELECT details FROM session_audit_log WHERE event = 'revoked_all' AND user_id = 'u-admin'`,
    );
    expect(rows[0].details).toMatchObject({ reason: 'revoke_others', except: c.sessionId });
  });

  it('merges concurrent data patches of different keys without losing any', async () => {
    const session = await createTestSession(demo.app, { userId: 'u-alice' });
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    await Promise.all(
      keys.map((key, i) =>
        request(demo.server)
          .patch('/me/data')
          .set(session.headers())
          .send({ [key]: i })
          .expect(200),
      ),
    );
    const data = await request(demo.server).get('/me/data').set(session.headers()).expect(200);
    for (const [i, key] of keys.entries()) expect(data.body[key]).toBe(i);
  });

  it('rejects session data Postgres cannot store (400) and data over the limit (413), writing nothing', async () => {
    const session = await createTestSession(demo.app, { userId: 'u-alice' });
    await request(demo.server).patch('/me/data').set(session.headers()).send({ ok: 1 }).expect(200);
    await request(demo.server)
      .patch('/me/data')
      .set(session.headers())
      .set('content-type', 'application/json')
      .send('{"nul":"a\\u0000b"}')
      .expect(400);
    await request(demo.server)
      .patch('/me/data')
      .set(session.headers())
      .set('content-type', 'application/json')
      .send('{"lone":"\\ud800"}')
      .expect(400);
    await request(demo.server)
      .patch('/me/data')
      .set(session.headers())
      .set('content-type', 'application/json')
      .send('[1,2]')
      .expect(400);
    await request(demo.server)
      .patch('/me/data')
      .set(session.headers())
      .send({ big: 'x'.repeat(70_000) })
      .expect(413);
    const { rows } = await demo.db.pool.query('SELECT data FROM user_sessions WHERE id = $1', [session.sessionId]);
    expect(rows[0].data).toEqual({ ok: 1 });
  });

  it('serves /health without a session', async () => {
    const health = await request(demo.server).get('/health').expect(200);
    // The first /health's fields, now with Terminus's report beside them.
    expect(health.body).toMatchObject({
      status: 'ok',
      database: 'up',
      info: { session: { status: 'up', store: { status: 'up' } } },
    });
  });
});

describe.each(ADAPTERS)('bearer transport (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_TRANSPORT: 'bearer' });
  });
  afterAll(async () => demo?.close());

  it('returns the token in the login body, sets no cookie, and accepts only the Authorization header', async () => {
    const response = await request(demo.server)
      .post('/auth/login')
      .send({ username: 'bob', password: 'bob-password' })
      .expect(200);
    const token = response.body.token as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(response.headers['set-cookie']).toBeUndefined();
    await request(demo.server).get('/me').set('Authorization', `Bearer ${token}`).expect(200);
    await request(demo.server).get('/me').set(cookie(token)).expect(401);
    await request(demo.server).get(`/me?access_token=${token}`).expect(401);
    await request(demo.server).get('/me').set('Authorization', `Basic ${token}`).expect(401);
    await request(demo.server).post('/auth/logout').set('Authorization', `Bearer ${token}`).expect(204);
    await request(demo.server).get('/me').set('Authorization', `Bearer ${token}`).expect(401);
  });
});
