import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { createHash } from 'node:crypto';
import request from 'supertest';
import { CurrentSession, RequireFreshSession, SessionService, type ActiveSession } from '../../src/session/index.js';
import { createTestSession } from '../../src/session/testing/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADAPTERS } from '../support/demo.js';
import { createHostApp, type HostApp } from '../support/host-app.js';

interface Cart {
  cart: { sku: string; quantity: number }[];
}

@Controller()
class CartController {
  constructor(private readonly sessions: SessionService) {}

  @Get('cart')
  cart(@CurrentSession() session: ActiveSession<Cart>) {
    return { userId: session.userId, cart: session.data.cart ?? [] };
  }

  @Post('cart')
  @HttpCode(200)
  add(@CurrentSession() session: ActiveSession<Cart>, @Body() item: { sku: string; quantity: number }) {
    return this.sessions.patch(session, { cart: [...(session.data.cart ?? []), item] });
  }

  @Post('sensitive')
  @HttpCode(200)
  @RequireFreshSession('5m')
  sensitive() {
    return { ok: true };
  }
}

const sha256 = (token: string) => createHash('sha256').update(token).digest();

describe.each(ADAPTERS)('nest-pg-session/testing: createTestSession (%s)', (adapter) => {
  let db: TestDatabase;
  const apps: HostApp[] = [];
  const start = async (session: Parameters<typeof createHostApp>[0]['session'] = {}) => {
    const host = await createHostApp({ url: db.url, adapter, session, login: false, controllers: [CartController] });
    apps.push(host);
    return host;
  };
  beforeAll(async () => void (db = await createTestDatabase()));
  afterAll(async () => {
    for (const host of apps) await host.app.close();
    await db?.drop();
  });

  it('logs a user in with data through the real service: cookie, CSRF header, hashed token, audited', async () => {
    const { app, server } = await start();
    const session = await createTestSession<Cart>(app, { userId: 'u-7', data: { cart: [{ sku: 'a', quantity: 1 }] } });
    expect(session).toMatchObject({ userId: 'u-7', transport: 'cookie', cookie: `__Host-sid=${session.token}` });
    expect(session.authorization).toBeUndefined();

    const read = await request(server).get('/cart').set(session.headers()).expect(200);
    expect(read.body).toEqual({ userId: 'u-7', cart: [{ sku: 'a', quantity: 1 }] });
    // An unsafe request passes CSRF with headers(), and not with the cookie alone.
    const added = await request(server).post('/cart').set(session.headers()).send({ sku: 'b', quantity: 2 });
    expect(added.status).toBe(200);
    expect(added.body.cart).toHaveLength(2);
    await request(server).post('/cart').set('Cookie', session.cookie!).send({ sku: 'c', quantity: 1 }).expect(403);

    // Stored as any login's session: the token's SHA-256 only, and a 'created' audit row.
    const { rows } = await db.pool.query(`SELECT token_hash, data::text FROM user_sessions WHERE id = $1`, [
      session.sessionId,
    ]);
    expect(rows[0].token_hash).toEqual(sha256(session.token));
    expect(rows[0].data).not.toContain(session.token);
    const audit = await db.pool.query(
      `SELECT event, user_id, actor_id FROM session_audit_log WHERE session_id = $1 ORDER BY id LIMIT 1`,
      [session.sessionId],
    );
    expect(audit.rows).toEqual([{ event: 'created', user_id: 'u-7', actor_id: 'u-7' }]);
  });

  it.each([
    ['expireIdle', 'idle_timeout'],
    ['expire', 'absolute_timeout'],
    ['revoke', 'revoked'],
  ] as const)('%s() ends the session: the next request answers 401 %s', async (lever, reason) => {
    const { app, server } = apps[0];
    const session = await createTestSession(app, { userId: 'u-1' });
    await request(server).get('/cart').set(session.headers()).expect(200);
    await session[lever]();
    expect((await request(server).get('/cart').set(session.headers()).expect(401)).body.reason).toBe(reason);
    // The session is gone now: a second pull of a lever says so instead of passing silently.
    await expect(session.expire()).rejects.toThrow(/is gone/);
  });

  it('authenticatedAgo() makes @RequireFreshSession refuse, as an old login would', async () => {
    const { app, server } = apps[0];
    const session = await createTestSession(app, { userId: 'u-1' });
    await request(server).post('/sensitive').set(session.headers()).expect(200);
    await session.authenticatedAgo('6m');
    expect((await request(server).post('/sensitive').set(session.headers()).expect(401)).body.reason).toBe(
      'reauth_required',
    );
    expect(() => session.authenticatedAgo('soon')).toThrow(TypeError);
  });

  it('expiring works at once with the cache on: the cached copy is evicted', async () => {
    const { app, server } = await start({ cache: { enabled: true, ttl: '60s' } });
    const session = await createTestSession(app, { userId: 'u-2' });
    await request(server).get('/cart').set(session.headers()).expect(200); // now cached
    await request(server).get('/cart').set(session.headers()).expect(200);
    await session.expireIdle();
    expect((await request(server).get('/cart').set(session.headers()).expect(401)).body.reason).toBe('idle_timeout');
  });

  it('bearer transport: an Authorization header, no cookie and no CSRF token', async () => {
    const { app, server } = await start({ transport: 'bearer' });
    const session = await createTestSession(app, { userId: 'u-3', ip: '203.0.113.9', userAgent: 'suite/1' });
    expect(session).toMatchObject({ transport: 'bearer', authorization: `Bearer ${session.token}` });
    expect(session.cookie).toBeUndefined();
    expect(session.csrfToken).toBeUndefined();
    expect(session.headers()).toEqual({ Authorization: `Bearer ${session.token}` });
    const { rows } = await db.pool.query(`SELECT ip, user_agent FROM user_sessions WHERE id = $1`, [session.sessionId]);
    expect(rows[0]).toEqual({ ip: '203.0.113.9', user_agent: 'suite/1' });
    await request(server).post('/cart').set(session.headers()).send({ sku: 'a', quantity: 1 }).expect(200);
  });

  describe('under NODE_ENV=production', () => {
    const previous = process.env.NODE_ENV;
    afterEach(() => {
      process.env.NODE_ENV = previous;
    });

    it('refuses to create a session unless told it is a test run, and then writes nothing', async () => {
      const { app } = apps[0];
      const { rows: before } = await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions`);
      process.env.NODE_ENV = 'production';
      await expect(createTestSession(app, { userId: 'u-1' })).rejects.toThrow(/refusing .*NODE_ENV=production/);
      const { rows: after } = await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions`);
      expect(after[0].n).toBe(before[0].n);
      const forced = await createTestSession(app, { userId: 'u-1', allowProduction: true });
      expect(forced.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    });
  });
});
