import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

// @nestjs/swagger is an optional peer: resolve it the way Node does when it is not installed.
jest.unstable_mockModule('@nestjs/swagger', () => {
  throw Object.assign(new Error("Cannot find package '@nestjs/swagger' imported from openapi.js"), {
    code: 'ERR_MODULE_NOT_FOUND',
  });
});

const { Test } = await import('@nestjs/testing');
const { TypeOrmModule } = await import('@nestjs/typeorm');
const { SessionModule, SessionService } = await import('../../src/session/index.js');
const { SessionAdminController } = await import('../../src/session/admin/session-admin.controller.js');
const { SESSION_ADMIN_OPENAPI, loadSwagger } = await import('../../src/session/admin/openapi.js');

describe('the admin API without @nestjs/swagger', () => {
  let db: TestDatabase;
  let app: INestApplication;
  beforeAll(async () => {
    db = await createTestDatabase();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: db.url, autoLoadEntities: true, retryAttempts: 0 }),
        SessionModule.forRoot({ admin: { enabled: true, authorize: () => true } }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('swagger really is unresolvable here', async () => {
    await expect(import('@nestjs/swagger')).rejects.toThrow(/Cannot find package '@nestjs\/swagger'/);
    expect(await loadSwagger()).toBeUndefined();
  });

  it('the library loads, the admin API works, and no OpenAPI metadata was written', async () => {
    expect(app.get(SESSION_ADMIN_OPENAPI)).toBe(false);
    const login = await loginCookie(app);
    const audit = await request(app.getHttpServer())
      .get('/admin/sessions/audit?userId=root')
      .set('Cookie', login)
      .expect(200);
    expect(audit.body.items.length).toBeGreaterThan(0);
    expect(Reflect.getMetadataKeys(SessionAdminController).filter((key) => String(key).startsWith('swagger/'))).toEqual(
      [],
    );
    expect(
      Reflect.getMetadataKeys(SessionAdminController.prototype.queryAudit).filter((key) =>
        String(key).startsWith('swagger/'),
      ),
    ).toEqual([]);
  });
});

/** A session for 'root', made as a login route would; its Set-Cookie gives the cookie. */
async function loginCookie(app: INestApplication): Promise<string> {
  const headers: string[] = [];
  await app
    .get(SessionService)
    .create({ headers: {} }, { append: (_: string, v: string) => headers.push(v), setHeader() {} }, { userId: 'root' });
  return headers.find((line) => line.startsWith('__Host-sid='))!.split(';')[0];
}
