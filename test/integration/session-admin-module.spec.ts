import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import request from 'supertest';
import { SessionModule, SessionOptionsError, type SessionModuleOptions } from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createHostApp } from '../support/host-app.js';

@Injectable()
class Roles {
  isAdmin(userId: string) {
    return userId.startsWith('root');
  }
}

@Module({ providers: [Roles], exports: [Roles] })
class RolesModule {}

const tokenOf = (response: request.Response) =>
  (response.headers['set-cookie'] as unknown as string[]).find((l) => l.startsWith('__Host-sid='))!.split(';')[0];

describe('the admin API is off by default and mounted only as configured', () => {
  let db: TestDatabase;
  const apps: INestApplication[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await db?.drop();
  });

  const typeorm = () =>
    TypeOrmModule.forRoot({ type: 'postgres', url: db.url, autoLoadEntities: true, retryAttempts: 0 });
  const start = async (session: ReturnType<typeof SessionModule.forRoot>) => {
    // Any user id logs in (POST /login?user=): enough to get sessions to test the admin API with.
    const { app, server } = await createHostApp({ url: db.url, session });
    apps.push(app);
    const as = async (user: string) => tokenOf(await request(server).post(`/login?user=${user}`).expect(200));
    return { server, as };
  };

  it('without `admin`, no admin routes exist', async () => {
    const { server, as } = await start(SessionModule.forRoot({}));
    const root = await as('root-1');
    await request(server).get('/admin/sessions/audit').set('Cookie', root).expect(404);
    await request(server).delete('/admin/users/u-1/sessions').set('Cookie', root).expect(404);
  });

  it('with enabled: false, no admin routes exist', async () => {
    const { server, as } = await start(SessionModule.forRoot({ admin: { enabled: false, authorize: () => true } }));
    await request(server)
      .get('/admin/sessions/audit')
      .set('Cookie', await as('root-1'))
      .expect(404);
  });

  it('mounts at a configured path, with an async rule that must answer exactly true', async () => {
    const authorize = async (session: { userId: string }) =>
      session.userId === 'root-2' ? true : ('yes' as unknown as boolean);
    const { server, as } = await start(
      SessionModule.forRoot({ admin: { enabled: true, authorize, path: '/ops/session-admin' } }),
    );
    await request(server)
      .get('/ops/session-admin/sessions/audit')
      .set('Cookie', await as('root-2'))
      .expect(200);
    await request(server)
      .get('/ops/session-admin/sessions/audit')
      .set('Cookie', await as('other'))
      .expect(403); // truthy is not true
    await request(server).get('/ops/session-admin/sessions/audit').expect(401);
    await request(server)
      .get('/admin/sessions/audit')
      .set('Cookie', await as('root-2'))
      .expect(404);
  });

  it('guards itself when the global guard is off', async () => {
    const { server, as } = await start(
      SessionModule.forRoot({ globalGuard: false, admin: { enabled: true, authorize: (s) => s.userId === 'root-3' } }),
    );
    const missing = await request(server).get('/admin/users/x/sessions').expect(401);
    expect(missing.body.reason).toBe('missing');
    await request(server).get('/admin/users/x/sessions').set('Cookie', '__Host-sid=forged').expect(401);
    await request(server)
      .get('/admin/users/x/sessions')
      .set('Cookie', await as('user-3'))
      .expect(403);
    await request(server)
      .get('/admin/users/x/sessions')
      .set('Cookie', await as('root-3'))
      .expect(200, []);
    // Its unsafe routes still need the CSRF token: a forged cross-site DELETE is refused.
    const forged = await request(server)
      .delete('/admin/users/x/sessions')
      .set('Cookie', await as('root-3'))
      .expect(403);
    expect(forged.body.reason).toBe('csrf_token_missing');
  });

  it('forRootAsync: routes declared beside useFactory, the rule from the factory with injected services', async () => {
    const { server, as } = await start(
      SessionModule.forRootAsync({
        imports: [RolesModule],
        inject: [Roles],
        useFactory: (roles: Roles): SessionModuleOptions => ({
          admin: { enabled: true, authorize: (s) => roles.isAdmin(s.userId) },
        }),
        admin: { enabled: true, path: 'backoffice' },
      }),
    );
    await request(server)
      .get('/backoffice/sessions/audit')
      .set('Cookie', await as('root-4'))
      .expect(200);
    await request(server)
      .get('/backoffice/sessions/audit')
      .set('Cookie', await as('user-4'))
      .expect(403);
  });

  it.each<[string, () => ReturnType<typeof SessionModule.forRoot>, RegExp]>([
    [
      'enabled without a rule',
      () => SessionModule.forRoot({ admin: { enabled: true } }),
      /admin\.authorize: must be a function/,
    ],
    [
      'a rule that is not a function',
      () => SessionModule.forRoot({ admin: { enabled: true, authorize: 'admins' as never } }),
      /admin\.authorize: must be a function/,
    ],
    [
      'a path with a route parameter',
      () => SessionModule.forRoot({ admin: { enabled: true, authorize: () => true, path: 'admin/:id' } }),
      /admin\.path/,
    ],
    [
      'a path that climbs',
      () => SessionModule.forRoot({ admin: { enabled: true, authorize: () => true, path: '../admin' } }),
      /admin\.path/,
    ],
    [
      'an unknown admin option',
      () => SessionModule.forRoot({ admin: { enabled: true, authorize: () => true, roles: ['x'] } as never }),
      /admin\.roles/,
    ],
    [
      'enabled only inside the async factory',
      () =>
        SessionModule.forRootAsync({
          useFactory: () => ({ admin: { enabled: true, authorize: () => true } }),
        }),
      /pass admin: \{ enabled: true \} to SessionModule\.forRootAsync\(\)/,
    ],
    [
      'a path only inside the async factory',
      () =>
        SessionModule.forRootAsync({
          useFactory: () => ({ admin: { authorize: () => true, path: 'elsewhere' } }),
          admin: { enabled: true },
        }),
      /admin\.path: must be given where SessionModule is imported/,
    ],
    [
      'declared async without a rule anywhere',
      () => SessionModule.forRootAsync({ useFactory: () => ({}), admin: { enabled: true } }),
      /admin\.authorize/,
    ],
  ])('refuses to start: %s', async (_, module, message) => {
    const compiling = Test.createTestingModule({ imports: [typeorm(), module()] }).compile();
    await expect(compiling).rejects.toThrow(SessionOptionsError);
    await expect(Test.createTestingModule({ imports: [typeorm(), module()] }).compile()).rejects.toThrow(message);
  });
});
