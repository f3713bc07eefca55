import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, HttpCode, Inject, Post, Query, Req, Res } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import {
  Public,
  SecondFactorRoute,
  SessionService,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../../src/session/index.js';
import { sessionOf } from '../../src/session/active-session.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { hashToken } from '../../src/session/token/session-token.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { cookie, sessionCookie, setCookieLine } from '../support/demo.js';
import { createHostApp, type HostApp } from '../support/host-app.js';

/** How many times an app's code check ran (the per-user limit must stop guesses before it). */
const checks = { count: 0 };
let pool: TestDatabase['pool'];

@Controller()
class PendingController {
  constructor(@Inject(SessionService) private readonly sessions: SessionService) {}

  @Public()
  @Post('pending-login')
  @HttpCode(200)
  login(@Query('user') user: string, @Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    return this.sessions.create(req, res, { userId: user, pendingSecondFactor: true });
  }

  @SecondFactorRoute()
  @Post('verify')
  @HttpCode(200)
  verify(
    @Body() body: { ok?: boolean; expire?: boolean },
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    return this.sessions.verifySecondFactor(req, res, async (session) => {
      checks.count++;
      // The pending session expires while the code is being checked.
      if (body.expire)
        await pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
          session.id,
        ]);
      return body.ok === true;
    });
  }

  @SecondFactorRoute()
  @Post('complete')
  @HttpCode(200)
  async complete(
    @Query('expire') expire: string | undefined,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    if (expire)
      await pool.query(`UPDATE user_sessions SET absolute_expires_at = now() - interval '1 second' WHERE id = $1`, [
        sessionOf(req)!.id,
      ]);
    return this.sessions.completeSecondFactor(req, res);
  }

  @SecondFactorRoute()
  @Post('fail')
  fail(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    return this.sessions.failSecondFactor(req, res);
  }

  @Public()
  @Post('complete-without-session')
  completeWithoutSession(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    return this.sessions.completeSecondFactor(req, res);
  }
}

async function hostWith(db: TestDatabase, session: Parameters<typeof createHostApp>[0]['session']): Promise<HostApp> {
  pool = db.pool;
  return createHostApp({ url: db.url, controllers: [PendingController], session });
}

describe('second factor and the session limit (evict-oldest, 2 per user; 2 pending per user)', () => {
  let db: TestDatabase;
  let host: HostApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    host = await hostWith(db, {
      sessionLimit: { maxSessionsPerUser: 2, policy: 'evict-oldest' },
      secondFactor: { maxPendingPerUser: 2 },
    });
  });
  afterAll(async () => {
    await host?.app.close();
    await db?.drop();
  });

  const sql = async (text: string, values: unknown[] = []) => (await db.pool.query(text, values)).rows;
  const fullLogin = async (user: string) =>
    sessionCookie(await request(host.server).post(`/login?user=${user}`).expect(200))!;
  const pendingLogin = async (user: string) => {
    const response = await request(host.server).post(`/pending-login?user=${user}`).expect(200);
    return { id: response.body.sessionId as string, token: sessionCookie(response)! };
  };
  const reasonOf = async (id: string) =>
    (await sql('SELECT revoke_reason FROM user_sessions WHERE id = $1', [id]))[0].revoke_reason;

  it('password-only logins evict none of the full sessions; the completed one evicts the oldest then, audited', async () => {
    const a = await fullLogin('ev-1');
    const b = await fullLogin('ev-1');
    const first = await pendingLogin('ev-1');
    const second = await pendingLogin('ev-1');
    await request(host.server).get('/me').set(cookie(a)).expect(200);
    await request(host.server).get('/me').set(cookie(b)).expect(200);

    const completed = await request(host.server)
      .post('/verify')
      .set(cookie(second.token))
      .send({ ok: true })
      .expect(200);
    expect((await request(host.server).get('/me').set(cookie(a)).expect(401)).body.reason).toBe('revoked');
    await request(host.server).get('/me').set(cookie(b)).expect(200);
    await request(host.server)
      .get('/me')
      .set(cookie(sessionCookie(completed)!))
      .expect(200);
    const evicted = await sql(
      `SELECT s.revoke_reason, a.details FROM user_sessions s JOIN session_audit_log a ON a.session_id = s.id AND a.event = 'revoked'
       WHERE s.user_id = 'ev-1' AND s.revoked_at IS NOT NULL`,
    );
    expect(evicted).toEqual([{ revoke_reason: 'limit_evicted', details: { reason: 'limit_evicted' } }]);
    expect(await reasonOf(first.id)).toBeNull(); // the other pending login still stands (it may complete too)
  });

  it('a user holds at most secondFactor.maxPendingPerUser pending sessions: a new one ends the oldest, full ones untouched', async () => {
    const full = await fullLogin('ev-2');
    const p1 = await pendingLogin('ev-2');
    const p2 = await pendingLogin('ev-2');
    const p3 = await pendingLogin('ev-2');
    expect(await reasonOf(p1.id)).toBe('limit_evicted');
    expect([await reasonOf(p2.id), await reasonOf(p3.id)]).toEqual([null, null]);
    await request(host.server).get('/me').set(cookie(full)).expect(200);
    expect(
      (await request(host.server).post('/verify').set(cookie(p1.token)).send({ ok: true }).expect(401)).body.reason,
    ).toBe('revoked');
  });
});

describe('second factor and the session limit (reject, 1 per user)', () => {
  let db: TestDatabase;
  let host: HostApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    host = await hostWith(db, { sessionLimit: { maxSessionsPerUser: 1, policy: 'reject' } });
  });
  afterAll(async () => {
    await host?.app.close();
    await db?.drop();
  });

  const sql = async (text: string, values: unknown[] = []) => (await db.pool.query(text, values)).rows;

  it('pending logins fill no quota: the real user still logs in', async () => {
    await request(host.server).post('/pending-login?user=rj-1').expect(200);
    await request(host.server).post('/pending-login?user=rj-1').expect(200);
    await request(host.server).post('/login?user=rj-1').expect(200);
  });

  it('completing at the limit answers the login 409 and ends the pending session, audited', async () => {
    const pending = await request(host.server).post('/pending-login?user=rj-2').expect(200);
    const token = sessionCookie(pending)!;
    await request(host.server).post('/login?user=rj-2').expect(200);
    const refused = await request(host.server).post('/verify').set(cookie(token)).send({ ok: true }).expect(409);
    expect(refused.body).toMatchObject({
      reason: 'session_limit',
      message: expect.stringContaining('1 active sessions'),
    });
    expect(setCookieLine(refused)).toMatch(/^__Host-sid=;/);
    const [row] = await sql('SELECT revoke_reason, second_factor_pending FROM user_sessions WHERE id = $1', [
      pending.body.sessionId,
    ]);
    expect(row).toEqual({ revoke_reason: 'limit_rejected', second_factor_pending: true });
    const audit = await sql(`SELECT event, details FROM session_audit_log WHERE session_id = $1 ORDER BY id`, [
      pending.body.sessionId,
    ]);
    expect(audit.map((a) => a.event)).toEqual(['created', 'revoked']);
    expect(audit[1].details).toEqual({ reason: 'limit_rejected' });
    await request(host.server).post('/complete').set(cookie(token)).expect(401);
  });
});

describe('second factor: the per-user failure limit and honest refusals', () => {
  let db: TestDatabase;
  let host: HostApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    host = await hostWith(db, {
      secondFactor: { maxAttempts: 3, userFailureLimit: 4, userFailureWindow: '15m', maxPendingPerUser: 5 },
    });
  });
  afterAll(async () => {
    await host?.app.close();
    await db?.drop();
  });

  const sql = async (text: string, values: unknown[] = []) => (await db.pool.query(text, values)).rows;
  const pendingLogin = async (user: string) => {
    const response = await request(host.server).post(`/pending-login?user=${user}`).expect(200);
    return { id: response.body.sessionId as string, token: sessionCookie(response)! };
  };
  const verify = (token: string, body: object) => request(host.server).post('/verify').set(cookie(token)).send(body);
  const failuresOf = async (user: string) =>
    (
      await sql(
        `SELECT count(*)::int AS n FROM session_audit_log WHERE user_id = $1 AND event = 'second_factor_failed'`,
        [user],
      )
    )[0].n;

  it('new logins buy no new guesses: past userFailureLimit verification is refused 401 second_factor_locked until the window frees one', async () => {
    const p1 = await pendingLogin('lk-1');
    for (let i = 0; i < 3; i++) await verify(p1.token, { ok: false }).expect(401);
    const p2 = await pendingLogin('lk-1');
    expect((await verify(p2.token, { ok: false }).expect(401)).body.reason).toBe('second_factor_failed');
    const before = checks.count;
    const locked = await verify(p2.token, { ok: true }).expect(401);
    expect(checks.count).toBe(before); // refused before the code is checked
    expect(locked.body).toMatchObject({
      reason: 'second_factor_locked',
      message: expect.stringMatching(/log in again in \d+ s/),
    });
    expect(locked.body.retryAfterSeconds).toBeGreaterThan(14 * 60);
    expect(locked.body.retryAfterSeconds).toBeLessThanOrEqual(15 * 60);
    expect(setCookieLine(locked)).toMatch(/^__Host-sid=;/);
    const [ended] = await sql('SELECT revoke_reason FROM user_sessions WHERE id = $1', [p2.id]);
    expect(ended.revoke_reason).toBe('second_factor_locked');
    expect(
      await sql(`SELECT details FROM session_audit_log WHERE session_id = $1 AND event = 'revoked'`, [p2.id]),
    ).toEqual([{ details: { reason: 'second_factor_locked' } }]);

    // The password step still works (no lock-out beyond the window), the factor does not yet.
    const p3 = await pendingLogin('lk-1');
    expect((await verify(p3.token, { ok: true }).expect(401)).body.reason).toBe('second_factor_locked');
    // Another user is not affected.
    await verify((await pendingLogin('lk-other')).token, { ok: true }).expect(200);

    // The window moves on: the failures age out, and the right code works again.
    await sql(`UPDATE session_audit_log SET occurred_at = occurred_at - interval '16 minutes' WHERE user_id = 'lk-1'`);
    await verify((await pendingLogin('lk-1')).token, { ok: true }).expect(200);
  });

  it('apps that check codes themselves: failSecondFactor() failures count, and completeSecondFactor() is refused past the limit', async () => {
    const p1 = await pendingLogin('lk-5');
    for (let i = 0; i < 3; i++) await request(host.server).post('/fail').set(cookie(p1.token)).expect(401);
    const p2 = await pendingLogin('lk-5');
    await request(host.server).post('/fail').set(cookie(p2.token)).expect(401);
    const refused = await request(host.server).post('/complete').set(cookie(p2.token)).expect(401);
    expect(refused.body).toMatchObject({ reason: 'second_factor_locked', retryAfterSeconds: expect.any(Number) });
    expect((await sql('SELECT revoke_reason FROM user_sessions WHERE id = $1', [p2.id]))[0].revoke_reason).toBe(
      'second_factor_locked',
    );
    await sql(`UPDATE session_audit_log SET occurred_at = occurred_at - interval '16 minutes' WHERE user_id = 'lk-5'`);
    const p3 = await pendingLogin('lk-5');
    await request(host.server).post('/complete').set(cookie(p3.token)).expect(200);
  });

  it('concurrent guesses across two pending sessions share the per-user limit (4 checks, never 6)', async () => {
    const a = await pendingLogin('lk-2');
    const b = await pendingLogin('lk-2');
    const before = checks.count;
    const answers = await Promise.all([a, b, a, b, a, b].map((p) => verify(p.token, { ok: false })));
    expect(answers.map((r) => r.status)).toEqual(Array(6).fill(401));
    expect(checks.count - before).toBe(4);
    expect(await failuresOf('lk-2')).toBeLessThanOrEqual(4);
    expect(answers.filter((r) => r.body.reason === 'second_factor_locked').length).toBeGreaterThanOrEqual(1);
  });

  it('a pending session that expires during the check, or before completing, is answered as such (not "too many attempts")', async () => {
    const p = await pendingLogin('lk-3');
    const expired = await verify(p.token, { ok: false, expire: true }).expect(401);
    expect(expired.body.reason).toBe('revoked');
    expect(expired.body.message).toMatch(/no longer waiting for a second factor/);
    expect(expired.body.message).not.toMatch(/Too many/);
    const q = await pendingLogin('lk-3');
    const late = await request(host.server).post('/complete?expire=1').set(cookie(q.token)).expect(401);
    expect(late.body.message).toMatch(/no longer waiting for a second factor/);
  });

  it('no session on the request is a 401 missing, not a 500', async () => {
    const response = await request(host.server).post('/complete-without-session').expect(401);
    expect(response.body).toMatchObject({
      reason: 'missing',
      message: expect.stringContaining('completeSecondFactor'),
    });
  });

  it('the store refuses to rotate or impersonate from a pending session (not only the service)', async () => {
    const store = host.app.get(SessionStore);
    const p = await pendingLogin('lk-4');
    const context = { ip: '127.0.0.1' };
    const rotated = await store.rotate({
      id: p.id,
      oldTokenHash: hashToken(p.token),
      newTokenHash: randomBytes(32),
      idleTimeoutMs: 60_000,
      context,
      reason: 'manual',
      reauthenticated: false,
    });
    expect(rotated).toBeUndefined();
    const impersonation = await store.startImpersonation({
      impersonatorSessionId: p.id,
      userId: 'victim',
      tokenHash: randomBytes(32),
      idleTimeoutMs: 60_000,
      maxDurationMs: 60_000,
      reason: 'testing',
      context,
    });
    expect(impersonation).toBeUndefined();
    expect(
      await sql('SELECT token_hash = $2 AS same, revoked_at FROM user_sessions WHERE id = $1', [
        p.id,
        hashToken(p.token),
      ]),
    ).toEqual([{ same: true, revoked_at: null }]);
    expect(await sql(`SELECT 1 FROM user_sessions WHERE user_id = 'victim'`)).toEqual([]);
  });
});
