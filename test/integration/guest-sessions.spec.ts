import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, Get, HttpCode, Inject, Patch, Post, Query, Req, Res } from '@nestjs/common';
import request from 'supertest';
import {
  CurrentSession,
  GuestSession,
  OptionalSession,
  Public,
  SessionService,
  type ActiveGuestSession,
  type ActiveSession,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { FakeResponse, fakeRequest } from '../support/fake-http.js';
import { createHostApp, type HostApp } from '../support/host-app.js';

/** A host app's own routes: a login that picks a lifetime and a merge rule, a guest route, an optional one. */
@Controller()
class HostController {
  constructor(@Inject(SessionService) private readonly sessions: SessionService) {}

  @Public()
  @Post('sign-in')
  @HttpCode(200)
  signIn(
    @Query('lifetime') lifetime: string | undefined,
    @Query('merge') merge: string | undefined,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    return this.sessions.create(req, res, {
      userId: 'u-7',
      data: { theme: 'dark', wizard: 'user' },
      ...(lifetime ? { lifetime } : {}),
      ...(merge ? { mergeGuestData: (guest, data) => ({ ...data, fromGuest: Object.keys(guest).sort() }) } : {}),
    });
  }

  @GuestSession()
  @Patch('wizard')
  async wizard(
    @Body() body: Record<string, unknown>,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    const data = await this.sessions.patchCurrent(req, res, body);
    const session = this.sessions.current(req) as ActiveSession | ActiveGuestSession;
    return { data, isGuest: session.isGuest, userId: session.userId, lifetime: session.lifetime, whole: session };
  }

  @GuestSession()
  @Get('whoami')
  whoami(@CurrentSession() session?: ActiveSession | ActiveGuestSession) {
    if (!session) return { kind: 'nobody' };
    return session.isGuest ? { kind: 'guest', userId: session.userId } : { kind: 'user', userId: session.userId };
  }

  @OptionalSession()
  @Get('optional')
  optional(@CurrentSession() session?: ActiveSession) {
    return { userId: session?.userId ?? null };
  }

  /** Not marked for guests: patchCurrent must refuse to start one here. */
  @OptionalSession()
  @Patch('not-for-guests')
  notForGuests(
    @Body() body: Record<string, unknown>,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    return this.sessions.patchCurrent(req, res, body);
  }
}

describe('guest sessions and lifetimes through the library API', () => {
  let db: TestDatabase;
  let host: HostApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    host = await createHostApp({
      url: db.url,
      session: {
        cookie: { name: 'sid', secure: false },
        csrf: { enabled: false },
        lifetimes: { remember: { idleTimeout: '7d', absoluteTimeout: '30d' } },
        guests: { enabled: true },
      },
      controllers: [HostController],
    });
  });
  afterAll(async () => {
    await host?.app.close();
    await db?.drop();
  });

  const sid = (token: string) => ({ Cookie: `sid=${token}` });
  const tokenOf = (response: request.Response) =>
    (response.headers['set-cookie'] as unknown as string[])
      .find((l) => l.startsWith('sid='))!
      .slice(4)
      .split(';')[0];

  it('an unknown lifetime is a clear error naming the profiles there are, and creates nothing', async () => {
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n;
    const sessions = host.app.get(SessionService);
    const create = (lifetime: string) =>
      sessions.create(fakeRequest(), new FakeResponse() as never, { userId: 'u-7', lifetime });
    await expect(create('forever')).rejects.toThrow(
      new TypeError('SessionService.create: unknown lifetime "forever"; the lifetimes option has: default, remember'),
    );
    // 'guest' is the guests' own profile, not one a login may pick.
    await expect(create('guest')).rejects.toThrow(/unknown lifetime "guest"/);
    await request(host.server).post('/sign-in?lifetime=forever').expect(500);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n).toBe(before);
    const remembered = await request(host.server).post('/sign-in?lifetime=remember').expect(200);
    expect(remembered.body.lifetime).toBe('remember');
  });

  it('a guest route tells guests from users; other routes never see a guest', async () => {
    expect((await request(host.server).get('/whoami').expect(200)).body).toEqual({ kind: 'nobody' });
    const started = await request(host.server).patch('/wizard').send({ step: 1 }).expect(200);
    expect(started.body).toMatchObject({ data: { step: 1 }, isGuest: true, userId: null, lifetime: 'guest' });
    const guest = tokenOf(started);
    // The session a handler holds (and may send) never carries the token it was started with.
    expect(JSON.stringify(started.body.whole)).not.toContain(guest);
    expect(Object.keys(started.body.whole)).not.toContain('token');
    expect((await request(host.server).get('/whoami').set(sid(guest))).body).toEqual({ kind: 'guest', userId: null });
    expect((await request(host.server).get('/optional').set(sid(guest))).body).toEqual({ userId: null });
    expect((await request(host.server).get('/me').set(sid(guest)).expect(401)).body.reason).toBe('missing');
    const user = tokenOf(await request(host.server).post('/sign-in').expect(200));
    expect((await request(host.server).get('/whoami').set(sid(user))).body).toEqual({ kind: 'user', userId: 'u-7' });
  });

  it('patchCurrent starts no guest on a route not marked @GuestSession()', async () => {
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n;
    await request(host.server).patch('/not-for-guests').send({ a: 1 }).expect(500);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n).toBe(before);
  });

  it("by default the guest's keys are carried and the login's own data wins a clash", async () => {
    const guest = tokenOf(
      await request(host.server).patch('/wizard').send({ wizard: 'guest', locale: 'fr' }).expect(200),
    );
    const login = await request(host.server).post('/sign-in').set(sid(guest)).expect(200);
    const { rows } = await db.pool.query('SELECT data FROM user_sessions WHERE id = $1', [login.body.sessionId]);
    expect(rows[0].data).toEqual({ wizard: 'user', locale: 'fr', theme: 'dark' });
  });

  it('mergeGuestData decides what the user session keeps', async () => {
    const guest = tokenOf(await request(host.server).patch('/wizard').send({ b: 1, a: 2 }).expect(200));
    const login = await request(host.server).post('/sign-in?merge=1').set(sid(guest)).expect(200);
    const { rows } = await db.pool.query('SELECT data FROM user_sessions WHERE id = $1', [login.body.sessionId]);
    expect(rows[0].data).toEqual({ theme: 'dark', wizard: 'user', fromGuest: ['a', 'b'] });
  });

  it('a guest write that holds the row when the login comes is carried, not lost (the login waits for it)', async () => {
    const guest = tokenOf(await request(host.server).patch('/wizard').send({ step: 1 }).expect(200));
    const { rows } = await db.pool.query(
      `SELECT id FROM user_sessions WHERE user_id IS NULL ORDER BY created_at DESC LIMIT 1`,
    );
    // A concurrent guest write, caught mid-flight: it holds the guest row's lock.
    const writer = await db.pool.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(`UPDATE user_sessions SET data = data || '{"step":2}' WHERE id = $1`, [rows[0].id]);
      const login = request(host.server)
        .post('/sign-in')
        .set(sid(guest))
        .then((r) => r);
      // The login is now waiting for the row (never by sleeping: Postgres says so).
      for (;;) {
        const waiting = await db.pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
        );
        if (waiting.rows[0].n > 0) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await writer.query('COMMIT');
      const created = await login;
      expect(created.status).toBe(200);
      const data = await db.pool.query('SELECT data FROM user_sessions WHERE id = $1', [created.body.sessionId]);
      expect(data.rows[0].data).toEqual({ step: 2, theme: 'dark', wizard: 'user' });
    } finally {
      writer.release();
    }
  });

  it("a user's old token at login is still revoked as fixation, with no guest data to carry", async () => {
    const first = tokenOf(await request(host.server).post('/sign-in').expect(200));
    const second = await request(host.server).post('/sign-in').set(sid(first)).expect(200);
    const { rows } = await db.pool.query(
      `SELECT revoke_reason FROM user_sessions WHERE revoked_at IS NOT NULL AND user_id = 'u-7' ORDER BY revoked_at DESC LIMIT 1`,
    );
    expect(rows[0].revoke_reason).toBe('fixation');
    expect(second.body.sessionId).not.toBe(undefined);
  });
});
