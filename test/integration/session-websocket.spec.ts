import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication, LoggerService } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import request from 'supertest';
import WebSocket from 'ws';
import { Public, UnsupportedContextError } from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createHostApp } from '../support/host-app.js';

const handled: string[] = [];

@WebSocketGateway({ path: '/ws' })
class ProfileGateway {
  @SubscribeMessage('whoami')
  whoami() {
    handled.push('whoami');
    return { event: 'whoami', data: 'someone' };
  }

  @Public()
  @SubscribeMessage('ping')
  ping() {
    return { event: 'pong', data: 'ok' };
  }
}

/** Keeps the error objects themselves (Nest's ws exception handler logs the thrown error). */
class ErrorKeepingLogger implements LoggerService {
  readonly errors: unknown[] = [];
  log() {}
  warn() {}
  error(message: unknown) {
    this.errors.push(message);
  }
}

describe('SessionGuard on WebSocket gateways (@nestjs/platform-ws)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let port: number;
  const logger = new ErrorKeepingLogger();
  beforeAll(async () => {
    db = await createTestDatabase();
    ({ app } = await createHostApp({
      url: db.url,
      login: 'u-ws',
      providers: [ProfileGateway],
      logger,
      configure: (created) => created.useWebSocketAdapter(new WsAdapter(created)),
      listen: true,
    }));
    port = (app.getHttpServer().address() as { port: number }).port;
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const connect = async (cookie: string) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { Cookie: cookie } });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const ask = (event: string) =>
      new Promise<{ event: string; data: any }>((resolve) => {
        socket.once('message', (raw) => resolve(JSON.parse(String(raw))));
        socket.send(JSON.stringify({ event, data: {} }));
      });
    return { socket, ask };
  };

  it('refuses a guarded message with an UnsupportedContextError that says what to do, even with a valid session cookie', async () => {
    const login = await request(app.getHttpServer()).post('/login').expect(200);
    const cookie = (login.headers['set-cookie'] as unknown as string[])
      .find((l) => l.startsWith('__Host-sid='))!
      .split(';')[0];
    const { socket, ask } = await connect(cookie);
    try {
      const answer = await ask('whoami');
      expect(answer).toMatchObject({ event: 'exception', data: { status: 'error', message: 'Internal server error' } });
      expect(handled).toEqual([]); // deny by default: the handler never ran

      const error = logger.errors.find((e): e is UnsupportedContextError => e instanceof UnsupportedContextError);
      expect(error?.message).toMatch(/SessionGuard does not support 'ws' contexts.*@Public\(\).*upgrade request/);

      // @Public() messages pass: the guard reads nothing from a socket.
      expect(await ask('ping')).toEqual({ event: 'pong', data: 'ok' });
    } finally {
      socket.close();
    }
  });
});
