import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { Controller, HttpCode, Post, UseGuards, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { CsrfGuard, Public, SessionGuard, SkipCsrf } from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { bareCookie, cookie, sessionCookie } from '../support/demo.js';
import { createHostApp } from '../support/host-app.js';

/** Beside the host app's /login and /me. */
@Controller()
class WiringController {
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
    const { app } = await createHostApp({
      url: db.url,
      session: { globalGuard },
      adapter,
      controllers: [WiringController],
    });
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
