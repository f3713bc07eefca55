import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import request from 'supertest';
import { SessionModule } from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createHostApp } from '../support/host-app.js';

/** What `ConfigModule.forRoot({ load })` reads, as an app would from env or a file. */
const sessionConfig = () => ({
  session: { idleTimeout: '2s', absoluteTimeout: '1h', cookieName: '__Host-app-sid' },
});

describe('SessionModule.forRootAsync with @nestjs/config', () => {
  let db: TestDatabase;
  let app: INestApplication;
  beforeAll(async () => {
    db = await createTestDatabase();
    ({ app } = await createHostApp({
      url: db.url,
      login: 'u-config',
      imports: [ConfigModule.forRoot({ load: [sessionConfig], ignoreEnvFile: true })],
      session: SessionModule.forRootAsync({
        imports: [ConfigModule],
        inject: [ConfigService],
        useFactory: (config: ConfigService) => ({
          idleTimeout: config.getOrThrow<string>('session.idleTimeout'),
          absoluteTimeout: config.getOrThrow<string>('session.absoluteTimeout'),
          cookie: { name: config.getOrThrow<string>('session.cookieName') },
          // A purge tick between the expiry and the next request would delete the row first ('invalid').
          purge: { enabled: false },
        }),
      }),
    }));
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('uses the cookie name and idle timeout from ConfigService', async () => {
    const server = app.getHttpServer();
    const login = await request(server).post('/login').expect(200);
    const line = (login.headers['set-cookie'] as unknown as string[]).find((l) => l.startsWith('__Host-app-sid='));
    expect(line).toBeDefined();
    const cookie = line!.split(';')[0];

    // The configured name is the one the guard reads; the default name is not.
    await request(server).get('/me').set('Cookie', cookie).expect(200, { userId: 'u-config' });
    await request(server).get('/me').set('Cookie', cookie.replace('__Host-app-sid', '__Host-sid')).expect(401);

    // The row's idle window is the configured 2s (the default is 30 minutes), on the database clock.
    const { rows } = await db.pool.query(
      `SELECT extract(epoch FROM idle_expires_at - last_seen_at)::float AS idle, extract(epoch FROM absolute_expires_at - created_at)::float AS absolute
         FROM user_sessions WHERE id = $1`,
      [login.body.sessionId],
    );
    expect(rows[0]).toEqual({ idle: 2, absolute: 3600 });

    // And in behaviour: 2.5 s without a request (moved on the database clock) ends the session.
    await db.pool.query(
      `UPDATE user_sessions SET last_seen_at = last_seen_at - interval '2.5 seconds', idle_expires_at = idle_expires_at - interval '2.5 seconds' WHERE id = $1`,
      [login.body.sessionId],
    );
    const expired = await request(server).get('/me').set('Cookie', cookie).expect(401);
    expect(expired.body.reason).toBe('idle_timeout');
  });
});
