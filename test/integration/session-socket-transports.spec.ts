import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Body,
  Controller,
  Inject,
  Patch,
  Req,
  Res,
  Sse,
  type INestApplication,
  type MessageEvent,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { from, interval, map, switchMap, type Observable } from 'rxjs';
import request from 'supertest';
import {
  CurrentSession,
  GuestSession,
  SessionService,
  SessionSockets,
  SOCKET_CLOSE_CODES,
  type ActiveSession,
  type HttpRequestLike,
  type HttpResponseLike,
} from '../../src/session/index.js';
import { SocketSessionRegistry } from '../../src/session/socket/socket-session.registry.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADAPTERS } from '../support/demo.js';
import { createHostApp, type HostApp } from '../support/host-app.js';
import { closedWithin, openWs, ProfileGateway, refusal } from '../support/sockets.js';

@Controller()
class StreamController {
  constructor(
    @Inject(SessionSockets) private readonly sockets: SessionSockets,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
  ) {}

  @Sse('events')
  events(@CurrentSession() session: ActiveSession): Observable<MessageEvent> {
    return this.sockets.whileLive(session, interval(50).pipe(map((n) => ({ data: { n } }))));
  }

  /**
   * The race: the session is revoked, and its NOTIFY heard, after the guard checked this
   * request but before the stream registers (as a slow handler or interceptor would let happen).
   */
  @Sse('late-events')
  lateEvents(@CurrentSession() session: ActiveSession): Observable<MessageEvent> {
    const registry = this.moduleRef.get(SocketSessionRegistry, { strict: false });
    const heard = new Promise<void>((resolve) => {
      const original = registry.sessionChanged.bind(registry);
      registry.sessionChanged = (id: string) => {
        original(id);
        if (id === session.id) resolve();
      };
    });
    return from(this.sessions.revoke(session.id).then(() => heard)).pipe(
      switchMap(() => this.sockets.whileLive(session, interval(50).pipe(map((n) => ({ data: { n } }))))),
    );
  }

  @GuestSession()
  @Patch('cart')
  async cart(
    @Body() body: Record<string, unknown>,
    @Req() req: HttpRequestLike,
    @Res({ passthrough: true }) res: HttpResponseLike,
  ) {
    return this.sessions.patchCurrent(req, res, body);
  }
}

const ENDED = SOCKET_CLOSE_CODES.sessionEnded;
const tokenOf = (response: request.Response, name = '__Host-sid') =>
  (response.headers['set-cookie'] as unknown as string[] | undefined)
    ?.find((l) => l.startsWith(`${name}=`))
    ?.split(';')[0]!
    .slice(name.length + 1);

describe.each(ADAPTERS)('sessions on streams and sockets: SSE, guests, bearer, no NOTIFY (%s)', (adapter) => {
  let db: TestDatabase;
  let sql: pg.Client;
  const apps: HostApp[] = [];

  const start = async (session: object) => {
    const host = await createHostApp({
      url: db.url,
      adapter,
      login: 'u-stream',
      providers: [ProfileGateway],
      controllers: [StreamController],
      session: { guests: { enabled: true }, sockets: { enabled: true }, ...session },
      configure: (app: INestApplication) => app.useWebSocketAdapter(new WsAdapter(app)),
      listen: true,
    });
    apps.push(host);
    const { port } = host.server.address() as { port: number };
    return { host, port, ws: `ws://127.0.0.1:${port}/ws` };
  };
  const idOf = async (token: string) => {
    const digest = createHash('sha256').update(token).digest();
    return (await sql.query<{ id: string }>('SELECT id FROM user_sessions WHERE token_hash = $1', [digest])).rows[0]!
      .id;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  afterAll(async () => {
    for (const host of apps) await host.app.close();
    await sql?.end();
    await db?.drop();
  });

  it('ends a server-sent event stream when its session is revoked', async () => {
    const { host, port } = await start({});
    const token = tokenOf(await request(host.server).post('/login').expect(200))!;
    const stream = await new Promise<IncomingMessage>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port, path: '/events', headers: { Cookie: `__Host-sid=${token}` } }, resolve)
        .on('error', reject),
    );
    expect(stream.statusCode).toBe(200);
    let body = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    const ended = new Promise<number>((resolve) => stream.once('end', () => resolve(performance.now())));
    await new Promise<void>((resolve) => {
      const streaming = () => body.includes('data: {"n":0}') && (stream.off('data', streaming), resolve());
      stream.on('data', streaming);
    });
    const revokedAt = performance.now();
    await host.moduleRef.get(SessionService).revoke(await idOf(token));
    const ms = (await ended) - revokedAt;
    console.log(`[${adapter}] SSE: revoke → stream ended in ${Math.round(ms)} ms`);
    expect(ms).toBeLessThan(1_000);
  });

  it('ends an SSE stream whose session was revoked between the guard and the stream (no missed NOTIFY)', async () => {
    const { host, port } = await start({});
    const token = tokenOf(await request(host.server).post('/login').expect(200))!;
    const stream = await new Promise<IncomingMessage>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port, path: '/late-events', headers: { Cookie: `__Host-sid=${token}` } }, resolve)
        .on('error', reject),
    );
    expect(stream.statusCode).toBe(200);
    stream.resume();
    // Without the guard's ticket the stream would run on to the session's deadline (hours).
    const ended = await Promise.race([
      new Promise<boolean>((resolve) => stream.once('end', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
    ]);
    stream.destroy();
    expect(ended).toBe(true);
  });

  it("refuses a guest session's socket (a socket is a user's)", async () => {
    const { host, ws } = await start({});
    const guest = await request(host.server).patch('/cart').send({ items: 1 }).expect(200);
    const token = tokenOf(guest)!;
    expect(token).toBeDefined();
    expect(await refusal(ws, { Cookie: `__Host-sid=${token}` })).toMatchObject({ code: ENDED, reason: 'missing' });
  });

  it('refuses every socket when the sockets option is off (nothing would close them)', async () => {
    const { host, ws } = await start({ sockets: { enabled: false } });
    const token = tokenOf(await request(host.server).post('/login').expect(200))!;
    expect(await refusal(ws, { Cookie: `__Host-sid=${token}` })).toMatchObject({ code: ENDED, reason: 'missing' });
  });

  it('takes a bearer token from the Authorization header, never from the URL', async () => {
    const { host, ws } = await start({ transport: 'bearer' });
    const { token } = (await request(host.server).post('/login').expect(200)).body as { token: string };
    expect(typeof token).toBe('string');
    expect(await refusal(`${ws}?token=${token}`)).toMatchObject({ code: ENDED, reason: 'missing' });
    const { socket, ask } = await openWs(ws, { Authorization: `Bearer ${token}` });
    expect(await ask('whoami')).toEqual({ event: 'whoami', data: 'u-stream' });
    socket.close();
  });

  it('without NOTIFY (cache.notify: false) re-checks open sockets every recheckInterval', async () => {
    const { host, ws } = await start({ cache: { notify: false }, sockets: { enabled: true, recheckInterval: '1s' } });
    const token = tokenOf(await request(host.server).post('/login').expect(200))!;
    const { closed } = await openWs(ws, { Cookie: `__Host-sid=${token}` });
    const revokedAt = performance.now();
    await host.moduleRef.get(SessionService).revoke(await idOf(token));
    // The bound is the interval (1 s) plus one batched read.
    const result = await closedWithin(closed, revokedAt, 2_000);
    console.log(`[${adapter}] no NOTIFY: revoke → socket closed by the re-check in ${result.ms} ms`);
    expect(result).toMatchObject({ code: ENDED, reason: 'revoked' });
  });
});
