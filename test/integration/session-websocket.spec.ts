import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, HttpCode, Inject, Post, Req, Res, type INestApplication } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import request from 'supertest';
import {
  CurrentSession,
  OptionalSession,
  SessionService,
  SOCKET_CLOSE_CODES,
  type ActiveSession,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../../src/session/index.js';
import { SessionValidator } from '../../src/session/session-validator.js';
import { SocketSessionRegistry } from '../../src/session/socket/socket-session.registry.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADAPTERS, cookie as withCsrf, eventually } from '../support/demo.js';
import { createHostApp, type HostApp } from '../support/host-app.js';
import { closedWithin, openWs, ProfileGateway, refusal } from '../support/sockets.js';

/** A gateway that never checks its handshake: its sockets have no session. */
@WebSocketGateway({ path: '/unchecked' })
class UncheckedGateway {
  @SubscribeMessage('whoami')
  whoami(@CurrentSession() session: ActiveSession) {
    return { event: 'whoami', data: session.userId };
  }

  @OptionalSession()
  @SubscribeMessage('maybe')
  maybe(@CurrentSession() session?: ActiveSession) {
    return { event: 'maybe', data: session?.userId ?? null };
  }
}

@Controller()
class LogoutController {
  constructor(@Inject(SessionService) private readonly sessions: SessionService) {}

  @Post('logout')
  @HttpCode(204)
  async logout(@Req() req: HttpRequestLike, @Res({ passthrough: true }) res: HttpResponseLike) {
    await this.sessions.destroy(req, res);
  }
}

const ENDED = SOCKET_CLOSE_CODES.sessionEnded;

describe.each(ADAPTERS)('sessions on WebSockets (@nestjs/platform-ws, %s)', (adapter) => {
  let db: TestDatabase;
  let sql: pg.Client;
  let a: HostApp;
  let b: HostApp; // a second instance on the same database
  let urlA: string;
  let urlB: string;

  const start = async (session: object = {}) => {
    const host = await createHostApp({
      url: db.url,
      adapter,
      login: 'u-ws',
      providers: [ProfileGateway, UncheckedGateway],
      controllers: [LogoutController],
      session: { sockets: { enabled: true }, flood: { limit: 5 }, ...session },
      configure: (app: INestApplication) => app.useWebSocketAdapter(new WsAdapter(app)),
      listen: true,
    });
    const { port } = host.server.address() as { port: number };
    return { host, url: `ws://127.0.0.1:${port}/ws` };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    ({ host: a, url: urlA } = await start());
    ({ host: b, url: urlB } = await start());
  });
  afterAll(async () => {
    await a?.app.close();
    await b?.app.close();
    await sql?.end();
    await db?.drop();
  });

  const login = async (user = 'u-ws') => {
    const response = await request(a.server).post(`/login?user=${user}`).expect(200);
    const line = (response.headers['set-cookie'] as unknown as string[]).find((l) => l.startsWith('__Host-sid='))!;
    const cookie = line.split(';')[0]!;
    return { cookie, token: cookie.slice('__Host-sid='.length) };
  };
  const sessionIdOf = async (token: string) =>
    (
      await sql.query<{ id: string }>(
        "SELECT id FROM user_sessions WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
        [token],
      )
    ).rows[0]?.id;

  it('answers a guarded message with the handshake session (@CurrentSession) and lets @Public() through', async () => {
    const { cookie } = await login();
    const { socket, ask } = await openWs(urlA, { Cookie: cookie });
    try {
      expect(await ask('whoami')).toEqual({ event: 'whoami', data: 'u-ws' });
      expect(await ask('ping')).toEqual({ event: 'pong', data: 'ok' });
    } finally {
      socket.close();
    }
  });

  it('refuses a guarded message on a socket without a session; @OptionalSession() runs without one', async () => {
    const { cookie } = await login();
    const { socket, ask } = await openWs(urlA.replace('/ws', '/unchecked'), { Cookie: cookie });
    try {
      expect(await ask('whoami')).toMatchObject({
        event: 'exception',
        data: { status: 'error', message: 'Forbidden resource' },
      });
      expect(await ask('maybe')).toEqual({ event: 'maybe', data: null });
    } finally {
      socket.close();
    }
  });

  it('refuses a handshake without a token, or with a forged, revoked or expired one (4401 + reason)', async () => {
    expect(await refusal(urlA)).toMatchObject({ code: ENDED, reason: 'missing' });
    expect(await refusal(urlA, { Cookie: '__Host-sid=' + 'A'.repeat(43) })).toMatchObject({
      code: ENDED,
      reason: 'invalid',
    });

    const revoked = await login();
    await b.moduleRef.get(SessionService).revoke((await sessionIdOf(revoked.token))!);
    expect(await refusal(urlA, { Cookie: revoked.cookie })).toMatchObject({ code: ENDED, reason: 'revoked' });

    const expired = await login();
    await sql.query("UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1", [
      await sessionIdOf(expired.token),
    ]);
    expect(await refusal(urlA, { Cookie: expired.cookie })).toMatchObject({ code: ENDED, reason: 'idle_timeout' });
  });

  it("refuses a cookie handshake from another site's page (cross-site WebSocket hijacking) with 4403", async () => {
    const { cookie } = await login();
    const host = new URL(urlA).host;
    expect(await refusal(urlA, { Cookie: cookie, Origin: 'https://evil.example' })).toMatchObject({
      code: SOCKET_CLOSE_CODES.originNotAllowed,
      reason: 'origin_not_allowed',
    });
    expect(await refusal(urlA, { Cookie: cookie, Origin: `https://${host}.evil.example` })).toMatchObject({
      code: SOCKET_CLOSE_CODES.originNotAllowed,
    });
    const { socket, ask } = await openWs(urlA, { Cookie: cookie, Origin: `http://${host}` });
    expect(await ask('whoami')).toEqual({ event: 'whoami', data: 'u-ws' });
    socket.close();
  });

  it('does not rotate at the handshake: a session due for rotation is accepted with its token', async () => {
    const { cookie, token } = await login();
    const id = (await sessionIdOf(token))!;
    await sql.query("UPDATE user_sessions SET rotated_at = now() - interval '1 day' WHERE id = $1", [id]);
    const { socket, ask } = await openWs(urlA, { Cookie: cookie });
    try {
      expect(await ask('whoami')).toEqual({ event: 'whoami', data: 'u-ws' });
      expect(await sessionIdOf(token)).toBe(id); // still the current token
      // The next HTTP request rotates it.
      const me = await request(a.server).get('/me').set('Cookie', cookie).expect(200);
      expect(me.headers['set-cookie']).toBeDefined();
    } finally {
      socket.close();
    }
  });

  it('closes the socket on another instance within 1 s when the session is revoked', async () => {
    const { cookie, token } = await login();
    const { socket, ask, closed } = await openWs(urlB, { Cookie: cookie });
    expect(await ask('whoami')).toEqual({ event: 'whoami', data: 'u-ws' });
    const revokedAt = performance.now();
    await a.moduleRef.get(SessionService).revoke((await sessionIdOf(token))!);
    const result = await closedWithin(closed, revokedAt, 1_000);
    console.log(`[${adapter}] revoke on instance A → socket on instance B closed in ${result.ms} ms`);
    expect(result).toMatchObject({ code: ENDED, reason: 'revoked' });
    expect(socket.readyState).toBe(3); // CLOSED
  });

  it('closes every socket of the session on logout (on both instances), and a new handshake is refused', async () => {
    const { cookie, token } = await login();
    const first = await openWs(urlA, { Cookie: cookie });
    const second = await openWs(urlB, { Cookie: cookie });
    // Both handshakes checked (a message waits for its socket's check).
    for (const socket of [first, second]) expect(await socket.ask('whoami')).toEqual({ event: 'whoami', data: 'u-ws' });
    const loggedOutAt = performance.now();
    await request(a.server).post('/logout').set(withCsrf(token)).expect(204);
    const closes = await Promise.all([first.closed, second.closed].map((c) => closedWithin(c, loggedOutAt, 1_000)));
    console.log(`[${adapter}] logout → sockets closed in ${closes.map((c) => c.ms).join(' ms, ')} ms`);
    for (const close of closes) expect(close).toMatchObject({ code: ENDED, reason: 'logout' });
    expect(await refusal(urlA, { Cookie: cookie })).toMatchObject({ code: ENDED, reason: 'invalid' });
  });

  it('does not miss a revoke that lands while the handshake is being checked', async () => {
    const { token } = await login();
    const registry = b.moduleRef.get(SocketSessionRegistry);
    const request = { headers: { cookie: `__Host-sid=${token}` } };
    const checked = await b.moduleRef
      .get(SessionValidator)
      .validate(request, { header: () => undefined }, false, false);
    if (!checked.ok) throw new Error(checked.reason);
    const ticket = registry.ticket(); // as SessionSockets takes it before the check
    await a.moduleRef.get(SessionService).revoke(checked.session.id);
    await eventually(async () => registry.ticket() > ticket, 1_000); // B heard the notice
    const closes: [number, string][] = [];
    registry.register(
      { readyState: 1, close: (code: number, reason: string) => closes.push([code, reason]) },
      checked.session,
      ticket,
    );
    await eventually(async () => closes.length > 0, 1_000);
    expect(closes).toEqual([[ENDED, 'revoked']]);
  });

  it('closes with token_reuse_detected when the token is found stolen', async () => {
    const { cookie, token } = await login();
    const { closed } = await openWs(urlB, { Cookie: cookie });
    const id = (await sessionIdOf(token))!;
    const detectedAt = performance.now();
    await a.moduleRef
      .get(SessionStore)
      .revoke(id, 'token_reuse', { actorId: null, ip: null, userAgent: null }, { event: 'token_reuse_detected' });
    expect(await closedWithin(closed, detectedAt, 1_000)).toMatchObject({
      code: ENDED,
      reason: 'token_reuse_detected',
    });
  });

  it('closes at the idle deadline, re-read first (the clock is moved in SQL)', async () => {
    const { cookie, token } = await login();
    const { closed, ask } = await openWs(urlA, { Cookie: cookie });
    const id = (await sessionIdOf(token))!;
    // A deadline 300 ms away, announced as any change is: the registry re-reads it and sets its timer.
    await sql.query("UPDATE user_sessions SET idle_expires_at = now() + interval '300 ms' WHERE id = $1", [id]);
    await sql.query("SELECT pg_notify('nest_pg_session', $1)", [id]);
    expect(await ask('whoami')).toEqual({ event: 'whoami', data: 'u-ws' });
    expect(await closedWithin(closed, performance.now(), 1_000 + 300)).toMatchObject({
      code: ENDED,
      reason: 'idle_timeout',
    });
  });

  it('keeps a socket open when activity elsewhere moved the idle deadline out', async () => {
    const { cookie, token } = await login();
    const { socket, closed, ask } = await openWs(urlA, { Cookie: cookie });
    const id = (await sessionIdOf(token))!;
    let state = 'open';
    void closed.then(() => (state = 'closed'));
    await sql.query("UPDATE user_sessions SET idle_expires_at = now() + interval '200 ms' WHERE id = $1", [id]);
    await sql.query("SELECT pg_notify('nest_pg_session', $1)", [id]);
    // Activity on another instance extends the row before the timer fires.
    await sql.query("UPDATE user_sessions SET idle_expires_at = now() + interval '1 hour' WHERE id = $1", [id]);
    // Past the old deadline, whose timer re-read the row and found it extended.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(state).toBe('open');
    expect(await ask('whoami')).toEqual({ event: 'whoami', data: 'u-ws' });
    socket.close();
  });

  it("a socket's guarded messages keep the session alive at the touch interval", async () => {
    const { cookie, token } = await login();
    const { socket, ask } = await openWs(urlA, { Cookie: cookie });
    const id = (await sessionIdOf(token))!;
    const before = await sql.query<{ idle: Date }>(
      "UPDATE user_sessions SET last_seen_at = now() - interval '10 minutes', idle_expires_at = now() + interval '20 minutes' WHERE id = $1 RETURNING idle_expires_at AS idle",
      [id],
    );
    // Announced, so the registry re-reads the row: a touch is due.
    await sql.query("SELECT pg_notify('nest_pg_session', $1)", [id]);
    await eventually(async () => {
      expect(await ask('whoami')).toEqual({ event: 'whoami', data: 'u-ws' });
      const { rows } = await sql.query<{ idle: Date }>(
        'SELECT idle_expires_at AS idle FROM user_sessions WHERE id = $1',
        [id],
      );
      return rows[0]!.idle.getTime() > before.rows[0]!.idle.getTime();
    }, 5_000);
    socket.close();
  });

  it('refuses handshakes from a source past the flood limit with 4429', async () => {
    const forged = { Cookie: '__Host-sid=' + 'B'.repeat(43) };
    let last = await refusal(urlA, forged);
    for (let i = 0; i < 6 && last.reason !== 'too_many_invalid_tokens'; i++) last = await refusal(urlA, forged);
    expect(last).toMatchObject({ code: SOCKET_CLOSE_CODES.tooManyInvalidTokens, reason: 'too_many_invalid_tokens' });
  });
});
