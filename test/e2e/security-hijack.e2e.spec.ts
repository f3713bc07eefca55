import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import request from 'supertest';
import { SessionStore } from '../../src/session/store/session.store.js';
import { installWriteCounter } from '../support/database.js';
import { ADAPTERS, cookie, login, SID, sessionCookie, startDemo, type RunningDemo } from '../support/demo.js';

/** A client: its address (the demo trusts X-Forwarded-For from loopback) and its browser. */
const client = (ip: string, userAgent: string) => ({ 'X-Forwarded-For': ip, 'User-Agent': userAgent });
const VICTIM = client('198.51.100.1', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0');
const THIEF = client('203.0.113.66', 'curl/8.9.1');

async function auditRows(demo: RunningDemo, sessionId: string, events: string[]) {
  const { rows } = await demo.db.pool.query(
    'SELECT event, ip, user_agent, details FROM session_audit_log WHERE session_id = $1 AND event = ANY($2) ORDER BY id',
    [sessionId, events],
  );
  return rows;
}

describe.each(ADAPTERS)('stolen cookie: token reuse after rotation (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    // Rotation and the end of grace are brought on by moving rotated_at in SQL (the module
    // decides on the database clock); with the cache off, the database sees every request.
    demo = await startDemo(adapter, {
      SESSION_ROTATION_INTERVAL: '1h',
      SESSION_ROTATION_GRACE: '1m',
      SESSION_CACHE: 'off',
      TRUST_PROXY: 'loopback',
    });
  });
  afterAll(async () => demo?.close());
  /** Rotation due now, or (after it) the grace window over. */
  const rotationDue = (sessionId: string) =>
    demo.db.pool.query(`UPDATE user_sessions SET rotated_at = now() - interval '1 hour' WHERE id = $1`, [sessionId]);
  const graceOver = (sessionId: string) =>
    demo.db.pool.query(`UPDATE user_sessions SET rotated_at = now() - interval '61 seconds' WHERE id = $1`, [
      sessionId,
    ]);

  it('revokes the session for both parties when a copy of a rotated-out token comes back after the grace window', async () => {
    const victim = await login(demo.server, 'alice', VICTIM);
    const stolen = victim.token; // e.g. copied from a synced backup or a malicious extension
    await rotationDue(victim.sessionId);
    const rotated = await request(demo.server).get('/me').set(VICTIM).set(cookie(victim.token)).expect(200);
    const current = sessionCookie(rotated)!;
    expect(current).not.toBe(stolen);
    await graceOver(victim.sessionId);

    const replay = await request(demo.server).get('/me').set(THIEF).set(cookie(stolen)).expect(401);
    expect(replay.body.reason).toBe('revoked');
    expect(sessionCookie(replay)).toBeUndefined(); // refusals never clear a cookie (it may be newer than this token)
    // The victim is logged out too: the server cannot tell which holder is the real one.
    expect((await request(demo.server).get('/me').set(VICTIM).set(cookie(current)).expect(401)).body.reason).toBe(
      'revoked',
    );
    // And the thief cannot use the stolen token for anything else either.
    await request(demo.server).patch('/me/data').set(THIEF).set(cookie(stolen)).send({ a: 1 }).expect(401);
    const rows = await auditRows(demo, victim.sessionId, ['token_reuse_detected']);
    expect(rows).toEqual([
      {
        event: 'token_reuse_detected',
        ip: THIEF['X-Forwarded-For'],
        user_agent: THIEF['User-Agent'],
        details: { reason: 'token_reuse', generation: 0, current: 1, behind: 1 },
      },
    ]);
  });

  it('the same when the thief rotates first and the victim comes back with the old token', async () => {
    const victim = await login(demo.server, 'bob', VICTIM);
    await rotationDue(victim.sessionId);
    const thiefRotation = await request(demo.server).get('/me').set(THIEF).set(cookie(victim.token)).expect(200);
    const thiefToken = sessionCookie(thiefRotation)!;
    expect(thiefToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await graceOver(victim.sessionId);
    await request(demo.server).get('/me').set(VICTIM).set(cookie(victim.token)).expect(401);
    expect((await request(demo.server).get('/me').set(THIEF).set(cookie(thiefToken)).expect(401)).body.reason).toBe(
      'revoked',
    );
    expect(await auditRows(demo, victim.sessionId, ['token_reuse_detected'])).toHaveLength(1);
  });
});

describe.each(ADAPTERS)('client binding as detection (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_ROTATION_INTERVAL: '0', TRUST_PROXY: 'loopback' });
  });
  afterAll(async () => demo?.close());

  it('audits an IP change once per change, not per request, and keeps serving the session', async () => {
    const writes = await installWriteCounter(demo.db.pool);
    const { token, sessionId } = await login(demo.server, 'alice', VICTIM);
    await writes.reset();
    for (let i = 0; i < 10; i++) await request(demo.server).get('/me').set(VICTIM).set(cookie(token)).expect(200);
    expect(await writes.updates()).toBe(0);
    expect(await auditRows(demo, sessionId, ['ip_changed', 'ua_changed'])).toEqual([]);

    const moved = { ...VICTIM, 'X-Forwarded-For': '198.51.100.77' };
    await Promise.all(
      Array.from({ length: 20 }, () => request(demo.server).get('/me').set(moved).set(cookie(token)).expect(200)),
    );
    for (let i = 0; i < 5; i++) await request(demo.server).get('/me').set(moved).set(cookie(token)).expect(200);
    expect(await writes.updates()).toBe(1);
    expect(await auditRows(demo, sessionId, ['ip_changed', 'ua_changed'])).toEqual([
      {
        event: 'ip_changed',
        ip: '198.51.100.77',
        user_agent: VICTIM['User-Agent'],
        details: { from: '198.51.100.1', to: '198.51.100.77' },
      },
    ]);
    const {
      rows: [row],
    } = await demo.db.pool.query('SELECT ip FROM user_sessions WHERE id = $1', [sessionId]);
    expect(row.ip).toBe('198.51.100.77');

    await request(demo.server).get('/me').set(VICTIM).set(cookie(token)).expect(200);
    expect((await auditRows(demo, sessionId, ['ip_changed'])).map((r) => r.details)).toEqual([
      { from: '198.51.100.1', to: '198.51.100.77' },
      { from: '198.51.100.77', to: '198.51.100.1' },
    ]);
  });

  it('audits a user-agent change (by default without rejecting it)', async () => {
    const { token, sessionId } = await login(demo.server, 'bob', VICTIM);
    await request(demo.server).get('/me').set(THIEF).set(cookie(token)).expect(200);
    await request(demo.server).get('/me').set(THIEF).set(cookie(token)).expect(200);
    const rows = await auditRows(demo, sessionId, ['ip_changed', 'ua_changed']);
    // One statement writes both rows; their order within it is not defined.
    expect(rows.map((r) => [r.event, r.details]).sort()).toEqual([
      ['ip_changed', { from: VICTIM['X-Forwarded-For'], to: THIEF['X-Forwarded-For'] }],
      ['ua_changed', { from: VICTIM['User-Agent'], to: THIEF['User-Agent'] }],
    ]);
  });
});

describe.each(ADAPTERS)('client binding, rejecting user-agent changes (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_REJECT_UA_CHANGE: 'true', TRUST_PROXY: 'loopback' });
  });
  afterAll(async () => demo?.close());

  it('revokes the session when it shows up with another user agent, and audits ua_changed', async () => {
    const { token, sessionId } = await login(demo.server, 'alice', VICTIM);
    // A new address alone is only audited: mobile clients move.
    await request(demo.server)
      .get('/me')
      .set({ ...VICTIM, 'X-Forwarded-For': '198.51.100.99' })
      .set(cookie(token))
      .expect(200);
    const stolen = await request(demo.server).get('/me').set(THIEF).set(cookie(token)).expect(401);
    expect(stolen.body.reason).toBe('revoked');
    expect((await request(demo.server).get('/me').set(VICTIM).set(cookie(token)).expect(401)).body.reason).toBe(
      'revoked',
    );
    const rows = await auditRows(demo, sessionId, ['ua_changed']);
    expect(rows).toEqual([
      {
        event: 'ua_changed',
        ip: THIEF['X-Forwarded-For'],
        user_agent: THIEF['User-Agent'],
        details: { reason: 'ua_changed', from: VICTIM['User-Agent'], to: THIEF['User-Agent'] },
      },
    ]);
  });
});

describe.each(ADAPTERS)('cookie hygiene against planted and oversized cookies (%s)', (adapter) => {
  let demo: RunningDemo;
  let lookups: ReturnType<typeof jest.spyOn>;
  beforeAll(async () => {
    demo = await startDemo(adapter);
  });
  afterAll(async () => demo?.close());
  beforeEach(() => {
    lookups = jest.spyOn(demo.app.get(SessionStore), 'lookupByTokenHash');
  });
  afterEach(() => lookups.mockRestore());

  it('refuses a session cookie whose name + value exceed 4096 bytes without a database lookup', async () => {
    const value = 'A'.repeat(4097 - SID.length);
    const response = await request(demo.server).get('/me').set('Cookie', `${SID}=${value}`).expect(401);
    expect(response.body.reason).toBe('invalid');
    // Multi-byte characters count as bytes, not characters.
    await request(demo.server)
      .get('/me')
      .set('Cookie', `${SID}=${'é'.repeat(2100)}`)
      .expect(401);
    expect(lookups).not.toHaveBeenCalled();
  });

  it('refuses a whole Cookie header over the server limit (431) instead of parsing it', async () => {
    const { token } = await login(demo.server);
    const response = await request(demo.server)
      .get('/me')
      .set('Cookie', `pad=${'x'.repeat(20_000)}; ${SID}=${token}`)
      .catch((error) => error.response ?? error);
    expect(response.status).toBe(431);
  });

  it('never accepts a tossed duplicate or a look-alike cookie name as the session', async () => {
    const victim = await login(demo.server, 'alice');
    const attacker = await login(demo.server, 'bob');
    const duplicated = await request(demo.server)
      .get('/me')
      .set('Cookie', `${SID}=${attacker.token}; ${SID}=${victim.token}`)
      .expect(401);
    expect(duplicated.body.reason).toBe('invalid');
    await request(demo.server).get('/me').set('Cookie', `${SID}=${victim.token}; ${SID}=${victim.token}`).expect(401);
    for (const name of ['__HOST-sid', '__host-sid', 'sid', '__Secure-sid', '__Host-sid2', '__Host-SID']) {
      const response = await request(demo.server).get('/me').set('Cookie', `${name}=${victim.token}`).expect(401);
      expect([name, response.body.reason]).toEqual([name, 'missing']);
    }
    expect(lookups).toHaveBeenCalledTimes(0);
    await request(demo.server).get('/me').set(cookie(victim.token)).expect(200);
  });
});
