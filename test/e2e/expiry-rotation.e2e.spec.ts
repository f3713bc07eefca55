import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { hashToken } from '../../src/session/token/session-token.js';
import { installWriteCounter } from '../support/database.js';
import { ADAPTERS, cookie, login, sessionCookie, sleep, startDemo, type RunningDemo } from '../support/demo.js';

const events = async (demo: RunningDemo, sessionId: string) =>
  (
    await demo.db.pool.query('SELECT event FROM session_audit_log WHERE session_id = $1 ORDER BY id', [sessionId])
  ).rows.map((r) => r.event);

/**
 * Deadlines are moved in SQL instead of waited for: the module decides on the database clock,
 * so `idle_expires_at = now() - 1 s` is a session whose idle timeout has passed. The timeouts
 * themselves are long, so nothing expires by the wall clock however slow the machine is.
 */
const move = (demo: RunningDemo, sessionId: string, set: string) =>
  demo.db.pool.query(`UPDATE user_sessions SET ${set} WHERE id = $1`, [sessionId]);

/** An UPDATE by hand sends no NOTIFY, so a cached copy would not see it: the database decides every request. */
const NO_CACHE = { SESSION_CACHE: 'off' };

describe.each(ADAPTERS)('deadlines on the database clock, moved in SQL (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    // Long enough that nothing falls due by itself during the test. No purge: a tick between
    // an expiry and the next request would delete the row first ('invalid').
    demo = await startDemo(adapter, {
      ...NO_CACHE,
      SESSION_IDLE_TIMEOUT: '1h',
      SESSION_ABSOLUTE_TIMEOUT: '2h',
      SESSION_TOUCH_INTERVAL: '5m',
      SESSION_ROTATION_INTERVAL: '1h',
      SESSION_ROTATION_GRACE: '1m',
      PURGE_CRON: 'off',
    });
  });
  afterAll(async () => demo?.close());

  describe('idle and absolute expiry', () => {
    it('ends a session after the idle timeout, audits expired_idle once, and clears the cookie', async () => {
      const { token, sessionId } = await login(demo.server);
      await request(demo.server).get('/me').set(cookie(token)).expect(200);
      await move(demo, sessionId, `idle_expires_at = now() - interval '1 second'`);
      const response = await request(demo.server).get('/me').set(cookie(token)).expect(401);
      expect(response.body.reason).toBe('idle_timeout');
      expect(sessionCookie(response)).toBe('');
      await request(demo.server).get('/me').set(cookie(token)).expect(401);
      expect(await events(demo, sessionId)).toEqual(['created', 'expired_idle']);
    });

    it('activity extends the idle timeout but never past the absolute timeout', async () => {
      const { token, sessionId } = await login(demo.server);
      // Last seen more than a touch interval ago, close to idle expiry: the next request extends it.
      await move(
        demo,
        sessionId,
        `last_seen_at = now() - interval '10 minutes', idle_expires_at = now() + interval '30 seconds'`,
      );
      await request(demo.server).get('/me').set(cookie(token)).expect(200);
      const { rows } = await demo.db.pool.query(
        `SELECT idle_expires_at > now() + interval '59 minutes' AS extended FROM user_sessions WHERE id = $1`,
        [sessionId],
      );
      expect(rows).toEqual([{ extended: true }]);
      // The absolute deadline passes while the idle one is an hour away.
      await move(demo, sessionId, `absolute_expires_at = now() - interval '1 second'`);
      const response = await request(demo.server).get('/me').set(cookie(token)).expect(401);
      expect(response.body.reason).toBe('absolute_timeout');
      expect(await events(demo, sessionId)).toEqual(['created', 'expired_absolute']);
    });
  });

  describe('touch throttling', () => {
    it('writes nothing for requests inside the touch interval, and once for a burst after it', async () => {
      const counter = await installWriteCounter(demo.db.pool);
      const { token, sessionId } = await login(demo.server);
      await counter.reset();
      // 30 requests, each read from the database, well inside the 5-minute interval.
      for (let i = 0; i < 30; i++) await request(demo.server).get('/me').set(cookie(token)).expect(200);
      expect(await counter.updates()).toBe(0);

      await move(demo, sessionId, `last_seen_at = last_seen_at - interval '5 minutes'`);
      await counter.reset();
      const before = (await demo.db.pool.query('SELECT last_seen_at FROM user_sessions WHERE id = $1', [sessionId]))
        .rows[0].last_seen_at;
      await Promise.all(
        Array.from({ length: 25 }, () => request(demo.server).get('/me').set(cookie(token)).expect(200)),
      );
      expect(await counter.updates()).toBe(1);
      const after = (await demo.db.pool.query('SELECT last_seen_at FROM user_sessions WHERE id = $1', [sessionId]))
        .rows[0].last_seen_at;
      expect(after.getTime()).toBeGreaterThan(before.getTime());
    });
  });

  describe('token rotation with a grace window', () => {
    it('rotates after the interval, keeps id and absolute expiry, and honours the old token only during grace', async () => {
      const { token: first, sessionId } = await login(demo.server);
      const {
        rows: [before],
      } = await demo.db.pool.query('SELECT absolute_expires_at, token_hash FROM user_sessions WHERE id = $1', [
        sessionId,
      ]);
      await request(demo.server).get('/me').set(cookie(first)).expect(200); // not due yet: no new token
      await move(demo, sessionId, `rotated_at = now() - interval '1 hour'`);

      const rotating = await request(demo.server).get('/me').set(cookie(first)).expect(200);
      const second = sessionCookie(rotating)!;
      expect(second).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(second).not.toBe(first);
      expect(rotating.body.sessionId).toBe(sessionId);
      const {
        rows: [after],
      } = await demo.db.pool.query(
        'SELECT absolute_expires_at, token_hash, previous_token_hash FROM user_sessions WHERE id = $1',
        [sessionId],
      );
      expect(after.absolute_expires_at).toEqual(before.absolute_expires_at);
      expect(after.previous_token_hash).toEqual(before.token_hash);

      // In-flight requests with the old token still work during grace, and do not rotate again.
      const inFlight = await request(demo.server).get('/me').set(cookie(first)).expect(200);
      expect(sessionCookie(inFlight)).toBeUndefined();
      await request(demo.server).get('/me').set(cookie(second)).expect(200);

      // After grace, the old token is a stolen copy: the whole session is revoked.
      await move(demo, sessionId, `rotated_at = now() - interval '61 seconds'`);
      const reuse = await request(demo.server).get('/me').set(cookie(first)).expect(401);
      expect(reuse.body.reason).toBe('revoked');
      const victim = await request(demo.server).get('/me').set(cookie(second)).expect(401);
      expect(victim.body.reason).toBe('revoked');
      expect(await events(demo, sessionId)).toEqual(['created', 'rotated', 'token_reuse_detected']);
    });

    it('concurrent requests at rotation time rotate once, and retire the old token once', async () => {
      const { token, sessionId } = await login(demo.server);
      await move(demo, sessionId, `rotated_at = now() - interval '1 hour'`);
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => request(demo.server).get('/me').set(cookie(token)).expect(200)),
      );
      const issued = responses.map(sessionCookie).filter(Boolean);
      expect(issued).toHaveLength(1);
      expect((await events(demo, sessionId)).filter((e) => e === 'rotated')).toHaveLength(1);
      await request(demo.server).get('/me').set(cookie(issued[0]!)).expect(200);
      const { rows } = await demo.db.pool.query(
        `SELECT r.token_generation, s.token_generation AS current FROM session_retired_tokens r
         JOIN user_sessions s ON s.id = r.session_id WHERE r.session_id = $1 AND r.token_hash = $2`,
        [sessionId, hashToken(token)],
      );
      expect(rows).toEqual([{ token_generation: 0, current: 1 }]);
      const { rows: all } = await demo.db.pool.query(
        'SELECT count(*)::int AS n FROM session_retired_tokens WHERE session_id = $1',
        [sessionId],
      );
      expect(all).toEqual([{ n: 1 }]);
    });
  });
});

/**
 * The one test per mechanism that waits for the wall clock, with the demo's cache on: each
 * session is left one deadline to meet (the others moved an hour away in SQL), and only
 * "it has passed" is asserted after the wait, so a slow machine cannot make it fail.
 */
describe('idle expiry, absolute expiry, rotation and grace on the real clock (express, cache on)', () => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo('express', {
      SESSION_IDLE_TIMEOUT: '1s',
      SESSION_ABSOLUTE_TIMEOUT: '1s',
      SESSION_TOUCH_INTERVAL: '100ms',
      SESSION_ROTATION_INTERVAL: '1s',
      SESSION_ROTATION_GRACE: '500ms',
      PURGE_CRON: 'off',
    });
  });
  afterAll(async () => demo?.close());

  it('each deadline passes by itself', async () => {
    const idle = await login(demo.server, 'alice');
    const absolute = await login(demo.server, 'bob');
    const rotating = await login(demo.server, 'admin');
    await move(demo, idle.sessionId, `absolute_expires_at = now() + interval '1 hour'`);
    await move(demo, absolute.sessionId, `idle_expires_at = now() + interval '1 hour'`);
    await move(
      demo,
      rotating.sessionId,
      `idle_expires_at = now() + interval '1 hour', absolute_expires_at = now() + interval '1 hour'`,
    );
    await sleep(1_100);

    expect((await request(demo.server).get('/me').set(cookie(idle.token)).expect(401)).body.reason).toBe(
      'idle_timeout',
    );
    expect((await request(demo.server).get('/me').set(cookie(absolute.token)).expect(401)).body.reason).toBe(
      'absolute_timeout',
    );
    const rotated = sessionCookie(await request(demo.server).get('/me').set(cookie(rotating.token)).expect(200));
    expect(rotated).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotated).not.toBe(rotating.token);

    // The rotation set a 1 s idle deadline again: move it away, so only the grace window decides.
    await move(demo, rotating.sessionId, `idle_expires_at = now() + interval '1 hour'`);
    await sleep(600);
    expect((await request(demo.server).get('/me').set(cookie(rotating.token)).expect(401)).body.reason).toBe('revoked');
    expect(await events(demo, rotating.sessionId)).toEqual(['created', 'rotated', 'token_reuse_detected']);
  });
});
