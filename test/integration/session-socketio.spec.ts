import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Inject, type INestApplication } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { SubscribeMessage, WebSocketGateway, type OnGatewayInit } from '@nestjs/websockets';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Server } from 'socket.io';
import { io, type Socket } from 'socket.io-client';
import request from 'supertest';
import {
  CurrentSession,
  SESSION_ENDED_EVENT,
  SessionService,
  SessionSockets,
  SOCKET_CLOSE_CODES,
  type ActiveSession,
} from '../../src/session/index.js';
import { SocketSessionRegistry } from '../../src/session/socket/socket-session.registry.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADAPTERS, eventually } from '../support/demo.js';
import { createHostApp, type HostApp } from '../support/host-app.js';

@WebSocketGateway()
class ProfileGateway implements OnGatewayInit {
  constructor(@Inject(SessionSockets) private readonly sockets: SessionSockets) {}

  afterInit(server: Server) {
    server.use(this.sockets.ioMiddleware());
  }

  @SubscribeMessage('whoami')
  whoami(@CurrentSession() session: ActiveSession) {
    return session.userId;
  }
}

/** Our middleware accepts the session, then the app's own refuses the socket: it never connects. */
@WebSocketGateway({ namespace: 'refusing' })
class RefusingGateway implements OnGatewayInit {
  constructor(@Inject(SessionSockets) private readonly sockets: SessionSockets) {}

  afterInit(server: Server) {
    server.use(this.sockets.ioMiddleware());
    server.use((_socket, next) => next(new Error('refused by the app')));
  }
}

const ENDED = SOCKET_CLOSE_CODES.sessionEnded;

describe.each(ADAPTERS)('sessions on socket.io (@nestjs/platform-socket.io, %s)', (adapter) => {
  let db: TestDatabase;
  let sql: pg.Client;
  let a: HostApp;
  let b: HostApp;
  let urlB: string;
  const clients: Socket[] = [];

  const start = async () => {
    const host = await createHostApp({
      url: db.url,
      adapter,
      login: 'u-io',
      providers: [ProfileGateway, RefusingGateway],
      session: { sockets: { enabled: true } },
      configure: (app: INestApplication) => app.useWebSocketAdapter(new IoAdapter(app)),
      listen: true,
    });
    const { port } = host.server.address() as { port: number };
    return { host, url: `http://127.0.0.1:${port}` };
  };
  beforeAll(async () => {
    db = await createTestDatabase();
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    ({ host: a } = await start());
    ({ host: b, url: urlB } = await start());
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await a?.app.close();
    await b?.app.close();
    await sql?.end();
    await db?.drop();
  });

  const connect = (headers: Record<string, string>) => {
    const client = io(urlB, { transports: ['websocket'], extraHeaders: headers, reconnection: false });
    clients.push(client);
    return client;
  };
  const loginCookie = async () => {
    const response = await request(a.server).post('/login').expect(200);
    const line = (response.headers['set-cookie'] as unknown as string[]).find((l) => l.startsWith('__Host-sid='))!;
    const cookie = line.split(';')[0]!;
    const digest = createHash('sha256').update(cookie.slice('__Host-sid='.length)).digest();
    const { rows } = await sql.query<{ id: string }>('SELECT id FROM user_sessions WHERE token_hash = $1', [digest]);
    return { cookie, id: rows[0]!.id };
  };

  it('refuses a handshake without a session, or with a forged one, with connect_error { code, reason }', async () => {
    const refused = (headers: Record<string, string>) =>
      new Promise<unknown>((resolve) =>
        connect(headers).once('connect_error', (error) => resolve((error as any).data)),
      );
    expect(await refused({})).toEqual({ code: ENDED, reason: 'missing' });
    expect(await refused({ Cookie: '__Host-sid=' + 'C'.repeat(43) })).toEqual({ code: ENDED, reason: 'invalid' });
  });

  it('refuses a session waiting for its second factor: connect_error { code: 4401, reason: second_factor_required }', async () => {
    const { cookie, id } = await loginCookie();
    await sql.query('UPDATE user_sessions SET second_factor_pending = true WHERE id = $1', [id]);
    const client = io(urlB, {
      forceNew: true,
      transports: ['websocket'],
      extraHeaders: { Cookie: cookie },
      reconnection: false,
    });
    clients.push(client);
    const error = await new Promise<Error>((resolve) => client.once('connect_error', resolve));
    expect((error as Error & { data: unknown }).data).toEqual({ code: ENDED, reason: 'second_factor_required' });
  });

  it('forgets a socket that never connected (refused by a later middleware) once its connection closes', async () => {
    const registry = b.moduleRef.get(SocketSessionRegistry);
    const before = registry.size;
    const { cookie } = await loginCookie();
    const client = io(`${urlB}/refusing`, {
      forceNew: true, // its own connection, with its own headers (io() shares one per host)
      transports: ['websocket'],
      extraHeaders: { Cookie: cookie },
      reconnection: false,
    });
    clients.push(client);
    const error = await new Promise<Error>((resolve) => client.once('connect_error', resolve));
    expect(error.message).toBe('refused by the app');
    client.close();
    // Eventually (however slow the machine): without following the connection it stays forever.
    await eventually(async () => registry.size === before, 10_000);
  });

  it('answers with the handshake session, and disconnects within 1 s when another instance revokes it', async () => {
    const { cookie, id } = await loginCookie();
    const client = connect({ Cookie: cookie });
    await new Promise<void>((resolve, reject) => client.once('connect', () => resolve()).once('connect_error', reject));
    expect(await client.emitWithAck('whoami', {})).toBe('u-io');

    const ended = new Promise<{ data: unknown; at: number }>((resolve) =>
      client.once(SESSION_ENDED_EVENT, (data: unknown) => resolve({ data, at: performance.now() })),
    );
    const disconnected = new Promise<string>((resolve) => client.once('disconnect', resolve));
    const revokedAt = performance.now();
    await a.moduleRef.get(SessionService).revoke(id);
    const { data, at } = await ended;
    console.log(`[${adapter}] socket.io: revoke on A → session_ended on B in ${Math.round(at - revokedAt)} ms`);
    expect(at - revokedAt).toBeLessThan(1_000);
    expect(data).toEqual({ code: ENDED, reason: 'revoked' });
    expect(await disconnected).toBe('io server disconnect');
  });
});
