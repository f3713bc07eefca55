import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { loadDemoConfig } from '../../src/demo/demo-config.js';
import { resolveSessionOptions } from '../../src/session/session.options.js';
import { ADAPTERS, cookie, login, sessionCookie, setCookieLine, startDemo, type RunningDemo } from '../support/demo.js';

const DAY = 86_400;
const maxAgeOf = (line: string | undefined) => Number(/Max-Age=(\d+)/.exec(line ?? '')?.[1]);

/** Deadlines are moved in SQL, never waited for: the module decides on the database clock. */
const move = (demo: RunningDemo, sessionId: string, set: string) =>
  demo.db.pool.query(`UPDATE user_sessions SET ${set} WHERE id = $1`, [sessionId]);

/** Seconds from the database's now to each deadline of the row. */
const deadlines = async (demo: RunningDemo, sessionId: string) =>
  (
    await demo.db.pool.query(
      `SELECT lifetime, extract(epoch FROM idle_expires_at - now())::int AS idle,
              extract(epoch FROM absolute_expires_at - now())::int AS absolute
       FROM user_sessions WHERE id = $1`,
      [sessionId],
    )
  ).rows[0] as { lifetime: string; idle: number; absolute: number };

const remember = (server: unknown, username = 'alice') =>
  request(server as never)
    .post('/auth/login')
    .send({ username, password: `${username}-password`, rememberMe: true })
    .expect(200);

describe.each(ADAPTERS)('lifetimes per session: "remember me" (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    // No cache (a hand-made UPDATE sends no NOTIFY) and no purge tick between a move and a request.
    demo = await startDemo(adapter, {
      SESSION_CACHE: 'off',
      PURGE_CRON: 'off',
      SESSION_IDLE_TIMEOUT: '1h',
      SESSION_ABSOLUTE_TIMEOUT: '12h',
      SESSION_TOUCH_INTERVAL: '5m',
      SESSION_ROTATION_INTERVAL: '1h',
      SESSION_ROTATION_GRACE: '1m',
    });
  });
  afterAll(async () => demo?.close());

  it('a remembered login gets the profile in the row, the answer and the cookie Max-Age (30 days)', async () => {
    const response = await remember(demo.server);
    expect(response.body.lifetime).toBe('remember');
    expect(maxAgeOf(setCookieLine(response))).toBe(30 * DAY);
    const row = await deadlines(demo, response.body.sessionId);
    expect(row.lifetime).toBe('remember');
    expect(row.idle).toBeGreaterThan(7 * DAY - 60);
    expect(row.idle).toBeLessThanOrEqual(7 * DAY);
    expect(row.absolute).toBeGreaterThan(30 * DAY - 60);

    const plain = await login(demo.server);
    expect(plain.response.body.lifetime).toBe('default');
    expect(maxAgeOf(setCookieLine(plain.response))).toBe(12 * 3600);
    expect((await deadlines(demo, plain.sessionId)).idle).toBeLessThanOrEqual(3600);
  });

  it('records the profile in the created audit row and shows it in the device list', async () => {
    const response = await remember(demo.server, 'bob');
    const token = sessionCookie(response)!;
    await login(demo.server, 'bob');
    const { rows } = await demo.db.pool.query(
      `SELECT details FROM session_audit_log WHERE event = 'created' AND session_id = $1`,
      [response.body.sessionId],
    );
    expect(rows).toEqual([{ details: { lifetime: 'remember' } }]);
    const devices = await request(demo.server).get('/sessions').set(cookie(token)).expect(200);
    expect(devices.body.map((s: { lifetime: string; current: boolean }) => [s.lifetime, s.current])).toEqual([
      ['default', false],
      ['remember', true],
    ]);
  });

  it("a touch extends the idle deadline by the row's own profile, not the module-wide one", async () => {
    const response = await remember(demo.server);
    const token = sessionCookie(response)!;
    const id = response.body.sessionId as string;
    await move(demo, id, `last_seen_at = now() - interval '10 minutes', idle_expires_at = now() + interval '1 minute'`);
    await request(demo.server).get('/me').set(cookie(token)).expect(200);
    expect((await deadlines(demo, id)).idle).toBeGreaterThan(7 * DAY - 60);

    const plain = await login(demo.server);
    await move(
      demo,
      plain.sessionId,
      `last_seen_at = now() - interval '10 minutes', idle_expires_at = now() + interval '1 minute'`,
    );
    await request(demo.server).get('/me').set(cookie(plain.token)).expect(200);
    const extended = (await deadlines(demo, plain.sessionId)).idle;
    expect(extended).toBeGreaterThan(3600 - 60);
    expect(extended).toBeLessThanOrEqual(3600);
  });

  it('a remembered session still ends at its absolute deadline, however active', async () => {
    const response = await remember(demo.server);
    const token = sessionCookie(response)!;
    await move(demo, response.body.sessionId, `absolute_expires_at = now() - interval '1 second'`);
    const refused = await request(demo.server).get('/me').set(cookie(token)).expect(401);
    expect(refused.body.reason).toBe('absolute_timeout');
  });

  it('ends a remembered session after its idle timeout', async () => {
    const response = await remember(demo.server);
    await move(demo, response.body.sessionId, `idle_expires_at = now() - interval '1 second'`);
    const refused = await request(demo.server)
      .get('/me')
      .set(cookie(sessionCookie(response)!))
      .expect(401);
    expect(refused.body.reason).toBe('idle_timeout');
  });

  it("rotation keeps the profile: idle by the profile, Max-Age the rest of the row's absolute lifetime", async () => {
    const response = await remember(demo.server);
    const id = response.body.sessionId as string;
    // Created 10 days ago by the clock, due for rotation.
    await move(
      demo,
      id,
      `rotated_at = now() - interval '2 hours', absolute_expires_at = now() + interval '20 days', idle_expires_at = now() + interval '1 hour'`,
    );
    const rotated = await request(demo.server)
      .get('/me')
      .set(cookie(sessionCookie(response)!))
      .expect(200);
    const line = setCookieLine(rotated);
    expect(maxAgeOf(line)).toBeGreaterThan(20 * DAY - 60);
    expect(maxAgeOf(line)).toBeLessThanOrEqual(20 * DAY);
    const row = await deadlines(demo, id);
    expect(row.lifetime).toBe('remember');
    expect(row.idle).toBeGreaterThan(7 * DAY - 60);
    const me = await request(demo.server)
      .get('/me')
      .set(cookie(sessionCookie(rotated)!))
      .expect(200);
    expect(me.body.sessionId).toBe(id);
  });

  it('refuses a rememberMe that is not a boolean, and creates nothing', async () => {
    const before = (await demo.db.pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n;
    await request(demo.server)
      .post('/auth/login')
      .send({ username: 'alice', password: 'alice-password', rememberMe: 'yes' })
      .expect(400);
    expect((await demo.db.pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n).toBe(before);
  });
});

describe('remember-me lifetimes from the environment', () => {
  it('SESSION_REMEMBER_IDLE_TIMEOUT and SESSION_REMEMBER_ABSOLUTE_TIMEOUT set the profile; the module checks them', async () => {
    const demo = await startDemo('express', {
      SESSION_REMEMBER_IDLE_TIMEOUT: '2d',
      SESSION_REMEMBER_ABSOLUTE_TIMEOUT: '3d',
      PURGE_CRON: 'off',
    });
    try {
      const response = await remember(demo.server);
      expect(maxAgeOf(setCookieLine(response))).toBe(3 * DAY);
      expect((await deadlines(demo, response.body.sessionId)).idle).toBeGreaterThan(2 * DAY - 60);
    } finally {
      await demo.close();
    }
    const tooLong = loadDemoConfig({ SESSION_REMEMBER_ABSOLUTE_TIMEOUT: '500d' }, 'postgres://unused');
    expect(() => resolveSessionOptions(tooLong.session)).toThrow(
      "lifetimes.remember.absoluteTimeout: '500d' is longer than maxAbsoluteTimeout '400d' (default)",
    );
  });
});
