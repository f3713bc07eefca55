import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  HttpCode,
  Injectable,
  Post,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { CsrfGuard, SessionGuard, type HttpRequestLike } from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createHostApp } from '../support/host-app.js';

/** A subclass as an app behind its own edge proxy would write it: the proxy sets x-client-ip. */
@Injectable()
class EdgeProxyGuard extends SessionGuard {
  protected override getClientIp(request: HttpRequestLike): string | undefined {
    const header = request.headers['x-client-ip'];
    return typeof header === 'string' ? header : super.getClientIp(request);
  }

  protected override shouldSkip(context: ExecutionContext): boolean {
    return context.getHandler().name.startsWith('health');
  }
}

/** A careless override: answers something truthy that is not `true` (an Observable would be one). */
@Injectable()
class TruthySkipGuard extends SessionGuard {
  protected override shouldSkip(): boolean {
    return {} as unknown as boolean;
  }
}

/** Beside the host app's /login and /me: routes the subclass skips by handler name. */
@Controller()
class HealthController {
  @Get('health')
  health() {
    return { ok: true };
  }

  @Post('health/ping')
  @HttpCode(200)
  healthPing() {
    return { ok: true };
  }
}

describe('SessionGuard subclasses', () => {
  let db: TestDatabase;
  let app: INestApplication | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await db.pool.query('TRUNCATE user_sessions, session_retired_tokens, session_audit_log');
  });
  afterAll(async () => db?.drop());

  const start = async (
    globalGuard: boolean,
    guards: object[] = [],
    configure?: (app: NestExpressApplication) => void,
  ) => {
    const host = await createHostApp({
      url: db.url,
      session: { globalGuard },
      login: 'u-ip',
      controllers: [HealthController],
      providers: guards as never[],
      configure: configure as ((app: INestApplication) => void) | undefined,
    });
    app = host.app;
    return host.server;
  };
  const auditIps = async () =>
    (await db.pool.query(`SELECT event, ip FROM session_audit_log ORDER BY id`)).rows as {
      event: string;
      ip: string;
    }[];

  it('an overridden getClientIp is the address audited, bound to the session, and an overridden shouldSkip skips', async () => {
    const server = await start(false, [
      { provide: APP_GUARD, useClass: EdgeProxyGuard },
      { provide: APP_GUARD, useExisting: CsrfGuard },
    ]);
    const login = await request(server).post('/login').set('x-client-ip', '203.0.113.7').expect(200);
    const cookie = (login.headers['set-cookie'] as unknown as string[])
      .find((l) => l.startsWith('__Host-sid='))!
      .split(';')[0];
    await request(server).get('/me').set('Cookie', cookie).set('x-client-ip', '198.51.100.9').expect(200);

    // The @Public login is audited with the guard's address, and the next request's new address is a client change.
    expect(await auditIps()).toEqual([
      { event: 'created', ip: '203.0.113.7' },
      { event: 'ip_changed', ip: '198.51.100.9' },
    ]);
    const { rows } = await db.pool.query(`SELECT ip FROM user_sessions`);
    expect(rows).toEqual([{ ip: '198.51.100.9' }]);

    // The subclass really is the guard in force: /me still needs a session, /health is skipped.
    await request(server).get('/me').expect(401);
    await request(server).get('/health').expect(200, { ok: true });
    // A skipped unsafe route: no session, so no token to check, but CsrfGuard still checks the origin.
    await request(server).post('/health/ping').expect(200, { ok: true });
    const forged = await request(server).post('/health/ping').set('Origin', 'https://evil.example').expect(403);
    expect(forged.body.reason).toBe('origin_not_allowed');
  });

  it('a shouldSkip that answers a truthy non-boolean skips nothing: /me without a session is still 401', async () => {
    const server = await start(false, [{ provide: APP_GUARD, useClass: TruthySkipGuard }]);
    expect((await request(server).get('/me').expect(401)).body.reason).toBe('missing');
    await request(server).get('/health').expect(401);
  });

  it("the default getClientIp ignores client headers and follows Express' trust proxy", async () => {
    let server = await start(true);
    await request(server)
      .post('/login')
      .set('x-client-ip', '203.0.113.7')
      .set('X-Forwarded-For', '192.0.2.1')
      .expect(200);
    const untrusted = await auditIps();
    expect(untrusted).toHaveLength(1);
    expect(untrusted[0].ip).toMatch(/127\.0\.0\.1|::1/);
    await app!.close();
    await db.pool.query('TRUNCATE user_sessions, session_retired_tokens, session_audit_log');

    server = await start(true, [], (created) => created.set('trust proxy', 'loopback'));
    await request(server)
      .post('/login')
      .set('x-client-ip', '203.0.113.7')
      .set('X-Forwarded-For', '192.0.2.1')
      .expect(200);
    expect(await auditIps()).toEqual([{ event: 'created', ip: '192.0.2.1' }]);
  });
});
