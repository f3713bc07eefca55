import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, HttpCode, Post, Req, Res, UseGuards, type INestApplication } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import request from 'supertest';
import { CsrfGuard, Public, SessionGuard, SessionModule, SessionService, SkipCsrf } from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { bareCookie, cookie, sessionCookie } from '../support/demo.js';

@Controller()
class WiringController {
  constructor(private readonly sessions: SessionService) {}

  @Public()
  @Post('login')
  @HttpCode(200)
  login(@Req() req: any, @Res({ passthrough: true }) res: any) {
    return this.sessions.create(req, res, { userId: 'u-1' });
  }

  /** Server-to-server callback: no browser session, so no CSRF checks. */
  @Public()
  @SkipCsrf()
  @Post('webhook')
  @HttpCode(200)
  webhook() {
    return { ok: true };
  }

  /** Wrongly wired: CsrfGuard without SessionGuard before it. */
  @UseGuards(CsrfGuard)
  @Post('misordered')
  @HttpCode(200)
  misordered() {
    return { ok: true };
  }

  @UseGuards(SessionGuard, CsrfGuard)
  @Post('guarded')
  @HttpCode(200)
  guarded() {
    return { ok: true };
  }
}

describe('security wiring in a host app', () => {
  let db: TestDatabase;
  const apps: INestApplication[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await db?.drop();
  });

  async function start(globalGuard: boolean, adapter: 'express' | 'fastify' = 'express'): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: db.url, autoLoadEntities: true, retryAttempts: 0 }),
        SessionModule.forRoot({ globalGuard }),
      ],
      controllers: [WiringController],
    }).compile();
    const app =
      adapter === 'fastify'
        ? moduleRef.createNestApplication(new FastifyAdapter(), { logger: false })
        : moduleRef.createNestApplication({ logger: false });
    await app.init();
    if (adapter === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
    apps.push(app);
    return app;
  }

  it.each(['express', 'fastify'] as const)(
    "without allowedOrigins, accepts only the request's own origin (%s)",
    async (adapter) => {
      const app = await start(true, adapter);
      const server = app.getHttpServer();
      const host = 'app.test:8080'; // what the browser put in Host, i.e. the origin it thinks it talks to
      await request(server).post('/login').set('Host', host).set('Origin', 'https://evil.example').expect(403);
      await request(server).post('/login').set('Host', host).set('Origin', `https://${host}`).expect(403); // other scheme
      await request(server).post('/login').set('Host', host).set('Origin', `http://${host}.evil.example`).expect(403);
      await request(server).post('/login').set('Host', host).set('Origin', `http://${host}`).expect(200);
      await request(server).post('/login').set('Host', host).set('Referer', `http://${host}/page`).expect(200);
    },
  );

  it('with the global guards: @SkipCsrf opens a public route to server-to-server posts, nothing else', async () => {
    const app = await start(true);
    await request(app.getHttpServer())
      .post('/webhook')
      .set('Sec-Fetch-Site', 'cross-site')
      .set('Origin', 'https://partner.example')
      .expect(200);
    await request(app.getHttpServer()).post('/login').set('Sec-Fetch-Site', 'cross-site').expect(403);
    const login = await request(app.getHttpServer()).post('/login').expect(200);
    const token = sessionCookie(login)!;
    await request(app.getHttpServer()).post('/guarded').set(bareCookie(token)).expect(403);
    await request(app.getHttpServer()).post('/guarded').set(cookie(token)).expect(200);
  });

  it('without global guards, CsrfGuard fails closed (500) when no SessionGuard ran before it; in order it protects', async () => {
    const app = await start(false);
    const login = await request(app.getHttpServer()).post('/login').expect(200);
    const token = sessionCookie(login)!;
    await request(app.getHttpServer()).post('/misordered').set(cookie(token)).expect(500);
    await request(app.getHttpServer()).post('/guarded').set(bareCookie(token)).expect(403);
    await request(app.getHttpServer())
      .post('/guarded')
      .set(cookie(token))
      .set('Origin', 'https://evil.example')
      .expect(403);
    await request(app.getHttpServer()).post('/guarded').set(cookie(token)).expect(200);
  });
});
