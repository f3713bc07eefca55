import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { installWriteCounter } from '../support/database.js';
import { ADAPTERS, cookie, login, sessionCookie, sleep, startDemo, type RunningDemo } from '../support/demo.js';

const events = async (demo: RunningDemo, sessionId: string) =>
  (
    await demo.db.pool.query('SELECT event FROM session_audit_log WHERE session_id = $1 ORDER BY id', [sessionId])
  ).rows.map((r) => r.event);

describe.each(ADAPTERS)('idle and absolute expiry on the database clock (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    // No purge: a tick between an expiry and the next request would delete the row first ('invalid').
    demo = await startDemo(adapter, {
      SESSION_IDLE_TIMEOUT: '1500ms',
      SESSION_ABSOLUTE_TIMEOUT: '3s',
      SESSION_TOUCH_INTERVAL: '100ms',
      SESSION_ROTATION_INTERVAL: '0',
      PURGE_CRON: 'off',
    });
  });
  afterAll(async () => demo?.close());

  it('ends a session after the idle timeout, audits expired_idle once, and clears the cookie', async () => {
    const { token, sessionId } = await login(demo.server);
    await request(demo.server).get('/me').set(cookie(token)).expect(200);
    await sleep(1_700);
    const response = await request(demo.server).get('/me').set(cookie(token)).expect(401);
    expect(response.body.reason).toBe('idle_timeout');
    expect(sessionCookie(response)).toBe('');
    await request(demo.server).get('/me').set(cookie(token)).expect(401);
    expect(await events(demo, sessionId)).toEqual(['created', 'expired_idle']);
  });

  it('activity extends the idle timeout but never past the absolute timeout', async () => {
    const { token, sessionId } = await login(demo.server);
    const started = Date.now();
    // Active every 400 ms: well inside idle (1.5 s), so only the absolute limit (3 s) can end it.
    while (Date.now() - started < 2_700) {
      await request(demo.server).get('/me').set(cookie(token)).expect(200);
      await sleep(400);
    }
    await sleep(Math.max(0, 3_150 - (Date.now() - started)));
    const response = await request(demo.server).get('/me').set(cookie(token)).expect(401);
    expect(response.body.reason).toBe('absolute_timeout');
    expect(await events(demo, sessionId)).toEqual(['created', 'expired_absolute']);
  });
});

describe.each(ADAPTERS)('touch throttling (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_TOUCH_INTERVAL: '3s', SESSION_ROTATION_INTERVAL: '0' });
  });
  afterAll(async () => demo?.close());

  it('writes nothing for requests inside the touch interval, and once for a burst after it', async () => {
    const counter = await installWriteCounter(demo.db.pool);
    const { token, sessionId } = await login(demo.server);
    await counter.reset();
    // 30 requests well inside the 3 s interval (even on a loaded CI machine).
    const started = Date.now();
    for (let i = 0; i < 30; i++) await request(demo.server).get('/me').set(cookie(token)).expect(200);
    if (Date.now() - started < 2_500) expect(await counter.updates()).toBe(0);

    await sleep(3_100);
    const before = (await demo.db.pool.query('SELECT last_seen_at FROM user_sessions WHERE id = $1', [sessionId]))
      .rows[0].last_seen_at;
    await Promise.all(Array.from({ length: 25 }, () => request(demo.server).get('/me').set(cookie(token)).expect(200)));
    expect(await counter.updates()).toBe(1);
    const after = (await demo.db.pool.query('SELECT last_seen_at FROM user_sessions WHERE id = $1', [sessionId]))
      .rows[0].last_seen_at;
    expect(after.getTime()).toBeGreaterThan(before.getTime());
  });
});

describe.each(ADAPTERS)('token rotation with a grace window (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_ROTATION_INTERVAL: '1500ms', SESSION_ROTATION_GRACE: '1s' });
  });
  afterAll(async () => demo?.close());

  it('rotates after the interval, keeps id and absolute expiry, and honours the old token only during grace', async () => {
    const { token: first, sessionId } = await login(demo.server);
    const {
      rows: [before],
    } = await demo.db.pool.query('SELECT absolute_expires_at, token_hash FROM user_sessions WHERE id = $1', [
      sessionId,
    ]);
    await sleep(1_600);

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
    await sleep(1_100);
    const reuse = await request(demo.server).get('/me').set(cookie(first)).expect(401);
    expect(reuse.body.reason).toBe('revoked');
    const victim = await request(demo.server).get('/me').set(cookie(second)).expect(401);
    expect(victim.body.reason).toBe('revoked');
    expect(await events(demo, sessionId)).toEqual(['created', 'rotated', 'token_reuse_detected']);
  });

  it('concurrent requests at rotation time rotate once', async () => {
    const { token, sessionId } = await login(demo.server);
    await sleep(1_600);
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => request(demo.server).get('/me').set(cookie(token)).expect(200)),
    );
    const issued = responses.map(sessionCookie).filter(Boolean);
    expect(issued).toHaveLength(1);
    expect((await events(demo, sessionId)).filter((e) => e === 'rotated')).toHaveLength(1);
    await request(demo.server).get('/me').set(cookie(issued[0]!)).expect(200);
  });
});
