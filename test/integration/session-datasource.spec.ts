import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import request from 'supertest';
import { SessionModule, SessionPurgeService } from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createHostApp } from '../support/host-app.js';

const counts = async (db: TestDatabase) => {
  const { rows } = await db.pool.query(
    `SELECT (SELECT count(*)::int FROM user_sessions) AS sessions, (SELECT count(*)::int FROM session_audit_log) AS audit`,
  );
  return rows[0] as { sessions: number; audit: number };
};

/**
 * An app whose default DataSource is its own database and whose sessions live in a second,
 * named one. Both databases have the session tables, so a query sent to the wrong one
 * would succeed silently: only the row counts tell them apart.
 */
describe("SessionModule with a named DataSource ('sessions')", () => {
  let appDb: TestDatabase;
  let sessionDb: TestDatabase;
  let app: INestApplication | undefined;
  beforeAll(async () => {
    [appDb, sessionDb] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await Promise.all(
      [appDb, sessionDb].map((db) =>
        db.pool.query('TRUNCATE user_sessions, session_retired_tokens, session_audit_log'),
      ),
    );
  });
  afterAll(async () => {
    await appDb?.drop();
    await sessionDb?.drop();
  });

  const dataSources = () => [
    TypeOrmModule.forRoot({ type: 'postgres', url: appDb.url, retryAttempts: 0 }),
    TypeOrmModule.forRoot({
      name: 'sessions',
      type: 'postgres',
      url: sessionDb.url,
      autoLoadEntities: true,
      retryAttempts: 0,
    }),
  ];
  const start = async (session: ReturnType<typeof SessionModule.forRoot>) => {
    ({ app } = await createHostApp({ dataSources: dataSources(), session, login: 'root-1' }));
    return app;
  };

  it('forRoot: sessions, audit rows, admin queries and the purge all use the named database', async () => {
    const started = await start(
      SessionModule.forRoot({
        dataSource: 'sessions',
        purge: { enabled: false },
        admin: { enabled: true, authorize: (session) => session.userId.startsWith('root') },
      }),
    );
    const server = started.getHttpServer();
    const login = await request(server).post('/login').expect(200);
    const cookie = (login.headers['set-cookie'] as unknown as string[])
      .find((l) => l.startsWith('__Host-sid='))!
      .split(';')[0];
    await request(server).get('/me').set('Cookie', cookie).expect(200, { userId: 'root-1' });

    expect(await counts(sessionDb)).toEqual({ sessions: 1, audit: 1 }); // the row and its 'created' event
    expect(await counts(appDb)).toEqual({ sessions: 0, audit: 0 });

    // The admin API reads the audit log of the named database.
    const audit = await request(server).get('/admin/sessions/audit?userId=root-1').set('Cookie', cookie).expect(200);
    expect(audit.body.items.map((item: { event: string }) => item.event)).toEqual(['created']);

    // The purge deletes from the named database: the only expired row is there.
    await sessionDb.pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 minute'`);
    const purged = await started.get(SessionPurgeService).runOnce();
    expect(purged.sessionsDeleted).toBe(1);
    expect((await counts(sessionDb)).sessions).toBe(0);
    expect(await counts(appDb)).toEqual({ sessions: 0, audit: 0 });
  });

  it('forRootAsync: `dataSource` beside useFactory', async () => {
    const started = await start(
      SessionModule.forRootAsync({ dataSource: 'sessions', useFactory: () => ({ idleTimeout: '10m' }) }),
    );
    await request(started.getHttpServer()).post('/login').expect(200);
    expect((await counts(sessionDb)).sessions).toBe(1);
    expect((await counts(appDb)).sessions).toBe(0);
  });
});
