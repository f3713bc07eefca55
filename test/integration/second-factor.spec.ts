import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res, Sse, type MessageEvent } from '@nestjs/common';
import { interval, map, type Observable } from 'rxjs';
import request from 'supertest';
import {
  CurrentSession,
  OptionalSession,
  Public,
  RequireFreshSession,
  SecondFactorRoute,
  SessionService,
  type ActiveSession,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../../src/session/index.js';
import { hashToken } from '../../src/session/token/session-token.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { cookie, sessionCookie } from '../support/demo.js';
import { createHostApp, type HostApp } from '../support/host-app.js';

/** An app's own second-factor routes, and routes that try what a pending session must not do. */
@Controller()
class HostController {
  constructor(@Inject(SessionService) private readonly sessions: SessionService) {}

  @Public()
  @Post('sign-in')
  @HttpCode(200)
  signIn(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    return this.sessions.create(req, res, { userId: 'u-9', data: { theme: 'dark' }, pendingSecondFactor: true });
  }

  @SecondFactorRoute()
  @Get('who')
  who(@CurrentSession() session: ActiveSession) {
    return { userId: session.userId, pending: session.secondFactorPending ?? false, data: session.data };
  }

  @SecondFactorRoute()
  @Post('verify')
  @HttpCode(200)
  verify(
    @Body() body: { ok: boolean },
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    return this.sessions.verifySecondFactor(req, res, (session) => session.userId === 'u-9' && body.ok === true);
  }

  @SecondFactorRoute()
  @Post('complete')
  @HttpCode(200)
  complete(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    return this.sessions.completeSecondFactor(req, res);
  }

  @SecondFactorRoute()
  @Post('fail')
  fail(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    return this.sessions.failSecondFactor(req, res);
  }

  @SecondFactorRoute()
  @Post('try-patch')
  tryPatch(@CurrentSession() session: ActiveSession) {
    return this.sessions.patch(session, { role: 'admin' });
  }

  @SecondFactorRoute()
  @Post('try-reauthenticate')
  tryReauthenticate(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    return this.sessions.reauthenticate(req, res);
  }

  @SecondFactorRoute()
  @Post('try-impersonate')
  tryImpersonate(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    return this.sessions.impersonate(req, res, { userId: 'u-1', reason: 'testing' });
  }

  @SecondFactorRoute()
  @RequireFreshSession()
  @Get('fresh')
  fresh() {
    return { fresh: true };
  }

  @Sse('events')
  events(@CurrentSession() session: ActiveSession): Observable<MessageEvent> {
    return interval(50).pipe(map((n) => ({ data: { n, userId: session.userId } })));
  }

  @OptionalSession()
  @Get('maybe')
  maybe(@CurrentSession() session?: ActiveSession) {
    return { userId: session?.userId ?? null };
  }
}

describe('sessions waiting for a second factor (module, with the cache)', () => {
  let db: TestDatabase;
  let host: HostApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    host = await createHostApp({
      url: db.url,
      controllers: [HostController],
      session: {
        cache: { enabled: true },
        impersonation: { enabled: true },
        secondFactor: { pendingTimeout: '2m', maxAttempts: 3 },
        admin: { enabled: true, authorize: () => true },
      },
    });
  });
  afterAll(async () => {
    await host?.app.close();
    await db?.drop();
  });

  const sql = async (text: string, values: unknown[] = []) => (await db.pool.query(text, values)).rows;
  const signIn = async () => {
    const response = await request(host.server).post('/sign-in').expect(200);
    return { body: response.body, token: sessionCookie(response)! };
  };
  const post = (path: string, token: string, body: object = {}) =>
    request(host.server).post(path).set(cookie(token)).send(body);

  it('create() answers secondFactorRequired; the session lives secondFactor.pendingTimeout; only marked routes read it (no SSE stream)', async () => {
    const { body, token } = await signIn();
    expect(body).toMatchObject({ userId: 'u-9', secondFactorRequired: true, csrfToken: expect.any(String) });
    const [row] = await sql(
      `SELECT extract(epoch FROM absolute_expires_at - created_at)::int AS absolute,
              extract(epoch FROM idle_expires_at - created_at)::int AS idle FROM user_sessions WHERE id = $1`,
      [body.sessionId],
    );
    expect(row).toEqual({ absolute: 120, idle: 120 });
    const who = await request(host.server).get('/who').set(cookie(token)).expect(200);
    expect(who.body).toEqual({ userId: 'u-9', pending: true, data: { theme: 'dark' } });
    for (const path of ['/me', '/maybe', '/fresh', '/events', '/admin/sessions/audit']) {
      const refused = await request(host.server).get(path).set(cookie(token)).expect(401);
      expect([path, refused.body.reason]).toEqual([path, 'second_factor_required']);
    }
  });

  it('on a marked route still: no patch, no step-up, no impersonation; nothing written', async () => {
    const { body, token } = await signIn();
    for (const path of ['/try-patch', '/try-reauthenticate', '/try-impersonate']) {
      const refused = await post(path, token).expect(401);
      expect([path, refused.body.reason]).toEqual([path, 'second_factor_required']);
    }
    expect(await sql('SELECT data, second_factor_pending FROM user_sessions WHERE id = $1', [body.sessionId])).toEqual([
      { data: { theme: 'dark' }, second_factor_pending: true },
    ]);
    expect(await sql('SELECT count(*)::int AS n FROM user_sessions WHERE impersonator_id IS NOT NULL')).toEqual([
      { n: 0 },
    ]);
  });

  it('completeSecondFactor(): new token, the cached pending one refused at once, fresh, data kept, audited', async () => {
    const { body, token } = await signIn();
    await request(host.server).get('/who').set(cookie(token)).expect(200); // now in the cache
    const completed = await post('/complete', token).expect(200);
    const full = sessionCookie(completed)!;
    expect(full).not.toBe(token);
    expect(completed.body).toMatchObject({ sessionId: body.sessionId, userId: 'u-9', csrfToken: expect.any(String) });
    expect((await request(host.server).get('/me').set(cookie(full)).expect(200)).body).toEqual({ userId: 'u-9' });
    await request(host.server).get('/fresh').set(cookie(full)).expect(200);
    expect((await request(host.server).get('/who').set(cookie(full)).expect(200)).body).toEqual({
      userId: 'u-9',
      pending: false,
      data: { theme: 'dark' },
    });
    const old = await request(host.server).get('/who').set(cookie(token)).expect(401);
    expect(old.body.reason).toBe('invalid');
    await post('/complete', token).expect(401);
    // Completing again, with the full session: a clear 400, and no new token.
    const again = await post('/complete', full).expect(400);
    expect(again.body.reason).toBe('second_factor_not_pending');
    expect(sessionCookie(again)).toBeUndefined();
    expect(
      await sql(`SELECT event, actor_id FROM session_audit_log WHERE session_id = $1 ORDER BY id`, [body.sessionId]),
    ).toEqual([
      { event: 'created', actor_id: 'u-9' },
      { event: 'second_factor_completed', actor_id: 'u-9' },
    ]);
    expect(await sql('SELECT 1 FROM session_retired_tokens WHERE token_hash = $1', [hashToken(token)])).toHaveLength(1);
  });

  it('failSecondFactor() counts, answers attemptsLeft, and revokes at maxAttempts (3); verifySecondFactor() alike', async () => {
    const { body, token } = await signIn();
    expect((await post('/fail', token).expect(401)).body).toMatchObject({
      reason: 'second_factor_failed',
      attemptsLeft: 2,
    });
    expect((await post('/verify', token, { ok: false }).expect(401)).body).toMatchObject({ attemptsLeft: 1 });
    expect((await post('/fail', token).expect(401)).body).toMatchObject({ reason: 'revoked', attemptsLeft: 0 });
    await post('/verify', token, { ok: true }).expect(401);
    await post('/complete', token).expect(401);
    const events = await sql(`SELECT event, details FROM session_audit_log WHERE session_id = $1 ORDER BY id`, [
      body.sessionId,
    ]);
    expect(events.map((e) => e.event)).toEqual([
      'created',
      'second_factor_failed',
      'second_factor_failed',
      'second_factor_failed',
      'revoked',
    ]);
    expect(events[3].details).toEqual({ attempts: 3, maxAttempts: 3 });

    const next = await signIn();
    expect((await post('/verify', next.token, { ok: true }).expect(200)).body.userId).toBe('u-9');
  });

  it('a new login with the pending cookie replaces the pending session (fixation rule)', async () => {
    const first = await signIn();
    const second = await request(host.server).post('/sign-in').set(cookie(first.token)).expect(200);
    expect(await sql('SELECT revoke_reason FROM user_sessions WHERE id = $1', [first.body.sessionId])).toEqual([
      { revoke_reason: 'fixation' },
    ]);
    expect(second.body.sessionId).not.toBe(first.body.sessionId);
  });
});
