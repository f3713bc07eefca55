import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import {
  ADAPTERS,
  bareCookie,
  cookie,
  eventually,
  login,
  sessionCookie,
  setCookieLine,
  startDemo,
  type RunningDemo,
} from '../support/demo.js';
import { SessionPurgeService } from '../../src/session/index.js';
import { captureNestLogs } from '../support/log-capture.js';

const REASON = 'ticket #4711: checkout fails for this user';

describe.each(ADAPTERS)('impersonation in the demo (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter);
  });
  afterAll(async () => demo?.close());

  /** An admin's fresh login, then POST /admin/users/:userId/impersonate from it. */
  async function impersonate(userId = 'u-alice') {
    const admin = await login(demo.server, 'admin');
    const response = await request(demo.server)
      .post(`/admin/users/${userId}/impersonate`)
      .set(cookie(admin.token))
      .send({ reason: REASON })
      .expect(200);
    return { admin, response, token: sessionCookie(response)!, sessionId: response.body.sessionId as string };
  }

  const sql = async (text: string, values: unknown[] = []) => (await demo.db.pool.query(text, values)).rows;
  const auditOf = (sessionId: string) =>
    sql('SELECT event, user_id, actor_id, details FROM session_audit_log WHERE session_id = $1 ORDER BY id', [
      sessionId,
    ]);

  it('an admin acts as the user: the cookie holds the new session, /me shows the impersonator, audited with the reason', async () => {
    const { admin, response, token, sessionId } = await impersonate();
    expect(response.body).toEqual({
      sessionId,
      userId: 'u-alice',
      impersonator: 'u-admin',
      expiresAt: expect.any(String),
      csrfToken: expect.any(String),
    });
    expect(token).toBeDefined();
    expect(token).not.toBe(admin.token);
    const me = await request(demo.server).get('/me').set(cookie(token)).expect(200);
    expect(me.body).toMatchObject({ userId: 'u-alice', sessionId, impersonator: 'u-admin' });
    // The admin's own session stays to return to, but its token left the client: it is retired.
    const own = await request(demo.server).get('/me').set(cookie(admin.token)).expect(401);
    expect(own.body.reason).toBe('invalid'); // inside the grace window: no theft alarm yet
    const [kept] = await sql(`SELECT revoked_at FROM user_sessions WHERE id = $1`, [admin.sessionId]);
    expect(kept.revoked_at).toBeNull();
    expect(await auditOf(sessionId)).toEqual([
      {
        event: 'impersonation_started',
        user_id: 'u-alice',
        actor_id: 'u-admin',
        details: {
          reason: REASON,
          sessionId,
          impersonatorSessionId: admin.sessionId,
          expiresAt: expect.any(String),
        },
      },
    ]);
  });

  it('logs who impersonates whom with the reason escaped: no forged log line, no terminal escape', async () => {
    const logs = captureNestLogs(); // after start: createDemoApp's `logger: false` would replace it
    const admin = await login(demo.server, 'admin');
    const reason = 'help\n[Nest] 1  - LOG [Auth] admin logged out\u001b[2K';
    await request(demo.server)
      .post('/admin/users/u-bob/impersonate')
      .set(cookie(admin.token))
      .send({ reason })
      .expect(200);
    const [line] = logs.from('SessionImpersonation', 'log').map((entry) => entry.message);
    expect(line).toMatch(/^"u-admin" started impersonating "u-bob" \(session [0-9a-f-]{36}\): "help\\u000a\[Nest\]/);
    expect(line).toContain('\\u001b[2K"');
    expect([line.includes('\n'), line.includes('\u001b')]).toEqual([false, false]);
    // The audit row keeps it as given (bounded, JSON-encoded by the admin API).
    const [row] = await sql(
      `SELECT details->>'reason' AS reason FROM session_audit_log WHERE event = 'impersonation_started' ORDER BY id DESC LIMIT 1`,
    );
    expect(row.reason).toBe(reason);
  });

  it('a user who is not an admin cannot impersonate (403), and nothing is written', async () => {
    const bob = await login(demo.server, 'bob');
    const before = await sql('SELECT count(*)::int AS n FROM user_sessions');
    const refused = await request(demo.server)
      .post('/admin/users/u-alice/impersonate')
      .set(cookie(bob.token))
      .send({ reason: REASON })
      .expect(403);
    expect(sessionCookie(refused)).toBeUndefined();
    expect(await sql('SELECT count(*)::int AS n FROM user_sessions')).toEqual(before);
    expect(
      await sql(`SELECT 1 FROM session_audit_log WHERE actor_id = 'u-bob' AND event = 'impersonation_started'`),
    ).toEqual([]);
  });

  it('needs a bounded reason (400) and a known user (404); CSRF guards both routes', async () => {
    const admin = await login(demo.server, 'admin');
    const post = (path: string, headers: Record<string, string>, body: object = { reason: REASON }) =>
      request(demo.server).post(path).set(headers).send(body);
    await post('/admin/users/u-alice/impersonate', cookie(admin.token), {}).expect(400);
    await post('/admin/users/u-alice/impersonate', cookie(admin.token), { reason: '' }).expect(400);
    await post('/admin/users/u-alice/impersonate', cookie(admin.token), { reason: 'x'.repeat(501) }).expect(400);
    await post('/admin/users/u-nobody/impersonate', cookie(admin.token)).expect(404);
    const forged = await post('/admin/users/u-alice/impersonate', bareCookie(admin.token)).expect(403);
    expect(forged.body.reason).toMatch(/^csrf_/);
    const { token } = await impersonate();
    const forgedStop = await post('/auth/stop-impersonating', bareCookie(token)).expect(403);
    expect(forgedStop.body.reason).toMatch(/^csrf_/);
    // The forged stop changed nothing: the impersonation goes on.
    await request(demo.server).get('/me').set(cookie(token)).expect(200);
  });

  it('an impersonation session cannot impersonate, change the password, step up, or reach the admin API', async () => {
    const { token } = await impersonate();
    const again = await request(demo.server)
      .post('/admin/users/u-bob/impersonate')
      .set(cookie(token))
      .send({ reason: REASON })
      .expect(403);
    expect(again.body.reason).toBe('impersonation');
    const password = await request(demo.server)
      .post('/me/password')
      .set(cookie(token))
      .send({ currentPassword: 'alice-password', newPassword: 'a-new-password' })
      .expect(403);
    expect(password.body.reason).toBe('impersonation');
    // Never fresh: the admin behind it never proved to be the user.
    const others = await request(demo.server).post('/sessions/revoke-others').set(cookie(token)).expect(401);
    expect(others.body.reason).toBe('reauth_required');
    const audit = await request(demo.server).get('/admin/sessions/audit').set(cookie(token)).expect(403);
    expect(audit.body.reason).toBe('impersonation');
    await request(demo.server).get('/admin/users/u-alice/sessions').set(cookie(token)).expect(403);
  });

  it('stop returns to the admin session: same id, new token; the impersonation and old tokens are dead', async () => {
    const { admin, token, sessionId } = await impersonate();
    const stopped = await request(demo.server).post('/auth/stop-impersonating').set(cookie(token)).expect(200);
    expect(stopped.body).toEqual({
      sessionId: admin.sessionId,
      userId: 'u-admin',
      expiresAt: expect.any(String),
      csrfToken: expect.any(String),
    });
    const fresh = sessionCookie(stopped)!;
    expect([admin.token, token]).not.toContain(fresh);
    const me = await request(demo.server).get('/me').set(cookie(fresh)).expect(200);
    expect(me.body.sessionId).toBe(admin.sessionId);
    expect(me.body.impersonator).toBeUndefined();
    expect((await request(demo.server).get('/me').set(cookie(token)).expect(401)).body.reason).toBe('revoked');
    expect(await auditOf(sessionId)).toEqual([
      expect.objectContaining({ event: 'impersonation_started', actor_id: 'u-admin' }),
      {
        event: 'impersonation_ended',
        user_id: 'u-alice',
        actor_id: 'u-admin',
        details: { reason: 'stopped', sessionId, impersonatorSessionId: admin.sessionId },
      },
    ]);
    // The admin's token from before was retired by the stop (past the grace window, its return is theft).
    await request(demo.server).get('/me').set(cookie(admin.token)).expect(401);
    await request(demo.server).get('/me').set(cookie(fresh)).expect(200);
    // A session that is not an impersonation has nothing to stop.
    const alice = await login(demo.server, 'alice');
    const not = await request(demo.server).post('/auth/stop-impersonating').set(cookie(alice.token)).expect(400);
    expect(not.body.reason).toBe('not_impersonating');
  });

  it("stop after the admin's own session ended: 401, the cookie cleared, the impersonation ended too", async () => {
    const { admin, token, sessionId } = await impersonate();
    await sql(`UPDATE user_sessions SET absolute_expires_at = now() - interval '1 second' WHERE id = $1`, [
      admin.sessionId,
    ]);
    // The impersonation ended with the admin's session: the guard refuses it before the stop runs.
    const stopped = await request(demo.server).post('/auth/stop-impersonating').set(cookie(token)).expect(401);
    expect(stopped.body.reason).toBe('idle_timeout');
    expect(setCookieLine(stopped)).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/);
    await request(demo.server).get('/me').set(cookie(token)).expect(401);
    expect(await auditOf(sessionId)).toEqual([
      expect.objectContaining({ event: 'impersonation_started' }),
      {
        event: 'impersonation_ended',
        user_id: 'u-alice',
        actor_id: 'u-admin',
        details: { reason: 'impersonator_session_ended', sessionId, impersonatorSessionId: admin.sessionId },
      },
    ]);
  });

  /** Impersonates, then another admin session of the same admin revokes at `path`: the impersonation ends with it. */
  async function endedByAdminRevoke(path: (adminSessionId: string) => string) {
    const { admin, token, sessionId } = await impersonate();
    await request(demo.server).get('/me').set(cookie(token)).expect(200); // now in the demo's session cache
    const other = await login(demo.server, 'admin');
    const revoked = await request(demo.server).delete(path(admin.sessionId)).set(cookie(other.token));
    expect([200, 204]).toContain(revoked.status);
    expect((await request(demo.server).get('/me').set(cookie(token)).expect(401)).body.reason).toBe('revoked');
    expect((await auditOf(sessionId)).at(-1)).toEqual({
      event: 'impersonation_ended',
      user_id: 'u-alice',
      actor_id: 'u-admin',
      details: { reason: 'impersonator_session_ended', sessionId, impersonatorSessionId: admin.sessionId },
    });
  }

  it("an admin revoke of that session ends the admin's impersonations at once", async () => {
    await endedByAdminRevoke((adminSessionId) => `/admin/sessions/${adminSessionId}`);
  });

  it("revoking all of the admin's sessions ends the admin's impersonations at once", async () => {
    await endedByAdminRevoke(() => '/admin/users/u-admin/sessions');
  });

  it("theft detected on the admin's session ends its impersonations", async () => {
    const { admin, token, sessionId } = await impersonate();
    await request(demo.server).get('/me').set(cookie(token)).expect(200);
    // The start retired the admin's token; a day later (moved in SQL) whoever presents it stole it.
    await sql(`UPDATE session_retired_tokens SET retired_at = now() - interval '1 day' WHERE session_id = $1`, [
      admin.sessionId,
    ]);
    const theft = await request(demo.server).get('/me').set(cookie(admin.token)).expect(401);
    expect(theft.body.reason).toBe('revoked');
    const [revoked] = await sql(`SELECT revoke_reason FROM user_sessions WHERE id = $1`, [admin.sessionId]);
    expect(revoked.revoke_reason).toBe('token_reuse');
    expect((await request(demo.server).get('/me').set(cookie(token)).expect(401)).body.reason).toBe('revoked');
    expect((await auditOf(sessionId)).at(-1)).toMatchObject({
      event: 'impersonation_ended',
      actor_id: 'u-admin',
      details: { reason: 'impersonator_session_ended' },
    });
  });

  it("the admin's own token cannot log out or act while impersonating; past the grace its return ends both", async () => {
    const { admin, token, sessionId } = await impersonate();
    await request(demo.server).post('/auth/logout').set(cookie(admin.token)).expect(401);
    await request(demo.server).get('/me').set(cookie(token)).expect(200);
    await sql(`UPDATE session_retired_tokens SET retired_at = now() - interval '1 day' WHERE session_id = $1`, [
      admin.sessionId,
    ]);
    expect((await request(demo.server).get('/me').set(cookie(admin.token)).expect(401)).body.reason).toBe('revoked');
    expect((await request(demo.server).get('/me').set(cookie(token)).expect(401)).body.reason).toBe('revoked');
    expect((await auditOf(sessionId)).at(-1)).toMatchObject({
      event: 'impersonation_ended',
      details: { reason: 'impersonator_session_ended' },
    });
  });

  it("ends when the admin's own session idles out underneath, before any purge", async () => {
    const { admin, token, sessionId } = await impersonate();
    await sql(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
      admin.sessionId,
    ]);
    const refused = await request(demo.server).get('/me').set(cookie(token)).expect(401);
    expect(refused.body.reason).toBe('idle_timeout');
    expect((await auditOf(sessionId)).at(-1)).toEqual({
      event: 'impersonation_ended',
      user_id: 'u-alice',
      actor_id: 'u-admin',
      details: { reason: 'impersonator_session_ended', sessionId, impersonatorSessionId: admin.sessionId },
    });
  });

  it("ends, audited, when the purge deletes the admin's expired session", async () => {
    const { admin, token, sessionId } = await impersonate();
    await request(demo.server).get('/me').set(cookie(token)).expect(200); // now in the demo's session cache
    await sql(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
      admin.sessionId,
    ]);
    await demo.app.get(SessionPurgeService).runOnce();
    expect(await sql(`SELECT 1 FROM user_sessions WHERE id = $1`, [admin.sessionId])).toEqual([]);
    const [ended] = await sql(`SELECT revoke_reason FROM user_sessions WHERE id = $1`, [sessionId]);
    expect(ended.revoke_reason).toBe('impersonator_ended');
    expect((await auditOf(sessionId)).at(-1)).toEqual({
      event: 'impersonation_ended',
      user_id: 'u-alice',
      actor_id: 'u-admin',
      details: { reason: 'impersonator_session_ended', sessionId, impersonatorSessionId: admin.sessionId },
    });
    expect((await request(demo.server).get('/me').set(cookie(token)).expect(401)).body.reason).toBe('revoked');
  });

  it('logging out of an impersonation is audited as its end, with the admin as actor', async () => {
    const { admin, token, sessionId } = await impersonate();
    await request(demo.server).post('/auth/logout').set(cookie(token)).expect(204);
    expect((await auditOf(sessionId)).at(-1)).toEqual({
      event: 'impersonation_ended',
      user_id: 'u-alice',
      actor_id: 'u-admin',
      details: { reason: 'logout', sessionId, impersonatorSessionId: admin.sessionId },
    });
  });

  it('every audit row written while impersonating names the admin as actor (rotation, client change, logout)', async () => {
    const { token, sessionId } = await impersonate();
    await sql(`UPDATE user_sessions SET rotated_at = now() - interval '1 day' WHERE id = $1`, [sessionId]);
    const browser = { 'User-Agent': 'other-browser/1' };
    const rotated = await request(demo.server).get('/me').set(cookie(token)).set(browser).expect(200);
    const next = sessionCookie(rotated)!;
    expect(next).toBeDefined();
    await request(demo.server).patch('/me/data').set(cookie(next)).set(browser).send({ note: 'x' }).expect(200);
    await request(demo.server).post('/auth/logout').set(cookie(next)).set(browser).expect(204);
    const rows = await auditOf(sessionId);
    expect(rows.map((row) => row.event)).toEqual([
      'impersonation_started',
      'ua_changed',
      'rotated',
      'impersonation_ended',
    ]);
    expect(rows.map((row) => row.actor_id)).toEqual(Array(4).fill('u-admin'));
    expect(rows.map((row) => row.user_id)).toEqual(Array(4).fill('u-alice'));
  });

  it("lives at most impersonation.maxDuration (1h), never past the admin's session; expiry is audited with the admin", async () => {
    const { sessionId } = await impersonate();
    const [row] = await sql(
      `SELECT extract(epoch FROM absolute_expires_at - created_at)::int AS seconds FROM user_sessions WHERE id = $1`,
      [sessionId],
    );
    expect(row.seconds).toBe(3600);

    const admin = await login(demo.server, 'admin');
    await sql(`UPDATE user_sessions SET absolute_expires_at = now() + interval '10 minutes' WHERE id = $1`, [
      admin.sessionId,
    ]);
    const started = await request(demo.server)
      .post('/admin/users/u-bob/impersonate')
      .set(cookie(admin.token))
      .send({ reason: REASON })
      .expect(200);
    const [bounded] = await sql(
      `SELECT i.absolute_expires_at = a.absolute_expires_at AS same FROM user_sessions i, user_sessions a
       WHERE i.id = $1 AND a.id = $2`,
      [started.body.sessionId, admin.sessionId],
    );
    expect(bounded.same).toBe(true);
    await sql(`UPDATE user_sessions SET absolute_expires_at = now() - interval '1 second' WHERE id = $1`, [
      started.body.sessionId,
    ]);
    const expired = await request(demo.server)
      .get('/me')
      .set(cookie(sessionCookie(started)!))
      .expect(401);
    expect(expired.body.reason).toBe('absolute_timeout');
    expect((await auditOf(started.body.sessionId)).at(-1)).toMatchObject({
      event: 'expired_absolute',
      actor_id: 'u-admin',
    });
  });

  it("its activity keeps the admin's session from idling out underneath", async () => {
    const { admin, token, sessionId } = await impersonate();
    await sql(
      `UPDATE user_sessions SET last_seen_at = now() - interval '10 minutes', idle_expires_at = now() + interval '5 minutes'
       WHERE id = ANY($1::uuid[])`,
      [[sessionId, admin.sessionId]],
    );
    await request(demo.server).get('/me').set(cookie(token)).expect(200);
    const [row] = await sql(
      `SELECT idle_expires_at > now() + interval '20 minutes' AS renewed FROM user_sessions WHERE id = $1`,
      [admin.sessionId],
    );
    expect(row.renewed).toBe(true);
  });

  it('the device list tells the user an impersonation session is open on their account', async () => {
    const alice = await login(demo.server, 'alice');
    const { sessionId } = await impersonate();
    const list = await request(demo.server).get('/sessions').set(cookie(alice.token)).expect(200);
    const entries = list.body as Array<{ id: string; impersonatedBy?: string; current: boolean }>;
    expect(entries.find((entry) => entry.id === sessionId)).toMatchObject({
      impersonatedBy: 'u-admin',
      current: false,
    });
    expect(entries.find((entry) => entry.id === alice.sessionId)).not.toHaveProperty('impersonatedBy');
  });
});

describe('impersonation over the bearer transport', () => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo('express', { SESSION_TRANSPORT: 'bearer' });
  });
  afterAll(async () => demo?.close());

  it('returns the tokens in the body: the impersonation one, then the admin session’s new one', async () => {
    const admin = await login(demo.server, 'admin');
    const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
    const started = await request(demo.server)
      .post('/admin/users/u-alice/impersonate')
      .set(bearer(admin.token))
      .send({ reason: REASON })
      .expect(200);
    expect(started.body).toMatchObject({ userId: 'u-alice', impersonator: 'u-admin', token: expect.any(String) });
    const me = await request(demo.server).get('/me').set(bearer(started.body.token)).expect(200);
    expect(me.body.impersonator).toBe('u-admin');
    // As with a cookie, the admin's own token stops working while impersonating.
    expect((await request(demo.server).get('/me').set(bearer(admin.token)).expect(401)).body.reason).toBe('invalid');
    const stopped = await request(demo.server)
      .post('/auth/stop-impersonating')
      .set(bearer(started.body.token))
      .expect(200);
    expect(stopped.body).toMatchObject({ sessionId: admin.sessionId, userId: 'u-admin', token: expect.any(String) });
    await request(demo.server).get('/me').set(bearer(stopped.body.token)).expect(200);
    await request(demo.server).get('/me').set(bearer(started.body.token)).expect(401);
  });

  it("a client that goes on using the admin's token past the grace is treated as theft: both sessions end", async () => {
    const admin = await login(demo.server, 'admin');
    const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
    const started = await request(demo.server)
      .post('/admin/users/u-alice/impersonate')
      .set(bearer(admin.token))
      .send({ reason: REASON })
      .expect(200);
    await demo.db.pool.query(
      `UPDATE session_retired_tokens SET retired_at = now() - interval '1 day' WHERE session_id = $1`,
      [admin.sessionId],
    );
    expect((await request(demo.server).get('/me').set(bearer(admin.token)).expect(401)).body.reason).toBe('revoked');
    await request(demo.server).get('/me').set(bearer(started.body.token)).expect(401);
  });
});

describe('impersonation and the per-user session limit', () => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo('express', { SESSION_MAX_PER_USER: '1', SESSION_LIMIT_POLICY: 'reject' });
  });
  afterAll(async () => demo?.close());

  it("an admin's impersonation neither uses up the user's limit nor is evicted by the user's login", async () => {
    const admin = await login(demo.server, 'admin');
    const started = await request(demo.server)
      .post('/admin/users/u-alice/impersonate')
      .set(cookie(admin.token))
      .send({ reason: REASON })
      .expect(200);
    const alice = await login(demo.server, 'alice');
    await request(demo.server).get('/me').set(cookie(alice.token)).expect(200);
    await request(demo.server)
      .get('/me')
      .set(cookie(sessionCookie(started)!))
      .expect(200);
    // The limit itself still holds for the user's own sessions.
    await request(demo.server).post('/auth/login').send({ username: 'alice', password: 'alice-password' }).expect(409);
  });
});

describe('impersonation across two app instances, each with its session cache', () => {
  let a: RunningDemo;
  let b: RunningDemo;
  beforeAll(async () => {
    a = await startDemo('express');
    // A TTL far past the wait below: only the notice can make b drop its copy in time.
    b = await startDemo('fastify', { SESSION_CACHE_TTL: '60s' }, { url: a.db.url });
  });
  afterAll(async () => {
    await b?.app.close();
    await a?.close();
  });

  it("ending the admin's session on one instance ends the impersonation cached on the other (NOTIFY)", async () => {
    const admin = await login(a.server, 'admin');
    const started = await request(a.server)
      .post('/admin/users/u-alice/impersonate')
      .set(cookie(admin.token))
      .send({ reason: REASON })
      .expect(200);
    const token = sessionCookie(started)!;
    // Cached on b: from now on b answers it from memory until told otherwise.
    await request(b.server).get('/me').set(cookie(token)).expect(200);
    await request(b.server).get('/me').set(cookie(token)).expect(200);
    const other = await login(a.server, 'admin');
    await request(a.server).delete(`/admin/sessions/${admin.sessionId}`).set(cookie(other.token)).expect(204);
    await eventually(async () => (await request(b.server).get('/me').set(cookie(token))).status === 401, 5_000);
    expect((await request(b.server).get('/me').set(cookie(token)).expect(401)).body.reason).toBe('revoked');
  });
});
