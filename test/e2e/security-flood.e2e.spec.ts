import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import request from 'supertest';
import { AggregatedAuditLog } from '../../src/session/security/aggregated-audit.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { generateToken } from '../../src/session/token/session-token.js';
import { installWriteCounter } from '../support/database.js';
import { ADAPTERS, cookie, login, SID, startDemo, type RunningDemo } from '../support/demo.js';

const LIMIT = 5;
// Far longer than any burst here takes on a busy machine; tests end a window by moving Date.now, the detector's clock.
const WINDOW_MS = 60_000;

/** Requests "from" a client address: the demo trusts X-Forwarded-For from loopback (TRUST_PROXY). */
const from = (ip: string) => ({ 'X-Forwarded-For': ip });

describe.each(ADAPTERS)('flood and guess detection (%s)', (adapter) => {
  let demo: RunningDemo;
  let lookups: ReturnType<typeof jest.spyOn>;
  beforeAll(async () => {
    demo = await startDemo(adapter, {
      SESSION_FLOOD_LIMIT: String(LIMIT),
      SESSION_FLOOD_WINDOW: `${WINDOW_MS}ms`,
      TRUST_PROXY: 'loopback',
    });
  });
  afterAll(async () => demo?.close());
  beforeEach(() => {
    lookups = jest.spyOn(demo.app.get(SessionStore), 'lookupByTokenHash');
  });
  afterEach(() => lookups.mockRestore());

  const invalidTokenRows = async (ip: string) =>
    (
      await demo.db.pool.query(
        `SELECT ip, user_agent, details FROM session_audit_log WHERE event = 'invalid_token' AND ip = $1 ORDER BY id`,
        [ip],
      )
    ).rows;

  it('answers 429 with Retry-After, and does no database work, once a source has presented N unknown tokens', async () => {
    const ip = '203.0.113.10';
    const valid = await login(demo.server, 'alice', from(ip));
    for (let i = 0; i < LIMIT; i++) {
      const guess = await request(demo.server).get('/me').set(from(ip)).set(cookie(generateToken())).expect(401);
      expect(guess.body.reason).toBe('invalid');
    }
    expect(lookups).toHaveBeenCalledTimes(LIMIT);
    lookups.mockClear();

    const blocked = await request(demo.server).get('/me').set(from(ip)).set(cookie(generateToken())).expect(429);
    expect(blocked.body).toMatchObject({ statusCode: 429, reason: 'too_many_invalid_tokens' });
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil(WINDOW_MS / 1000));
    // Until the window ends, even a valid token from that source costs nothing: refused before any lookup.
    await request(demo.server).get('/me').set(from(ip)).set(cookie(valid.token)).expect(429);
    await Promise.all(
      Array.from({ length: 50 }, () =>
        request(demo.server).get('/me').set(from(ip)).set(cookie(generateToken())).expect(429),
      ),
    );
    await request(demo.server).get('/me').set(from(ip)).set('Cookie', `${SID}=garbage`).expect(429);
    expect(lookups).not.toHaveBeenCalled();
    // No token, no lookup anyway: still the plain 401.
    expect((await request(demo.server).get('/me').set(from(ip)).expect(401)).body.reason).toBe('missing');

    // Other sources are not affected.
    await request(demo.server).get('/me').set(from('198.51.100.20')).set(cookie(valid.token)).expect(200);

    // Once the window has ended (on the app's clock, which the detector counts on) the source is served again.
    const clock = jest.spyOn(Date, 'now').mockReturnValue(Date.now() + WINDOW_MS + 100);
    try {
      await request(demo.server).get('/me').set(from(ip)).set(cookie(valid.token)).expect(200);
    } finally {
      clock.mockRestore();
    }
  });

  it('counts malformed tokens too, which never reach the database', async () => {
    const ip = '203.0.113.11';
    for (let i = 0; i < LIMIT; i++)
      await request(demo.server).get('/me').set(from(ip)).set('Cookie', `${SID}=not-a-token-${i}`).expect(401);
    expect(lookups).not.toHaveBeenCalled();
    await request(demo.server).get('/me').set(from(ip)).set(cookie(generateToken())).expect(429);
    expect(lookups).not.toHaveBeenCalled();
  });

  it('counts an IPv6 client per /64, so rotating through its own addresses does not reset the limit', async () => {
    for (let i = 1; i <= LIMIT; i++) {
      await request(demo.server)
        .get('/me')
        .set(from(`2001:db8:aa:bb::${i.toString(16)}`))
        .set(cookie(generateToken()))
        .expect(401);
    }
    await request(demo.server)
      .get('/me')
      .set(from('2001:db8:aa:bb:ffff:ffff:ffff:ffff'))
      .set(cookie(generateToken()))
      .expect(429);
    await request(demo.server).get('/me').set(from('2001:db8:aa:bc::1')).set(cookie(generateToken())).expect(401);
  });

  it('writes one aggregated invalid_token row per source and window (count in details), never one per request', async () => {
    const ip = '203.0.113.12';
    const writes = await installWriteCounter(demo.db.pool);
    await writes.reset();
    for (let i = 0; i < LIMIT - 1; i++)
      await request(demo.server)
        .get('/me')
        .set(from(ip))
        .set(cookie(generateToken()))
        .set('User-Agent', 'guesser/1.0')
        .expect(401);
    await request(demo.server)
      .get('/me')
      .set(from(ip))
      .set('Cookie', `${SID}=%00bad`)
      .set('User-Agent', 'guesser/1.0')
      .expect(401);
    await Promise.all(
      Array.from({ length: 200 }, () =>
        request(demo.server)
          .get('/me')
          .set(from(ip))
          .set(cookie(generateToken()))
          .set('User-Agent', 'guesser/1.0')
          .expect(429),
      ),
    );
    // While the window is open, nothing at all was written for the whole flood.
    expect(await invalidTokenRows(ip)).toEqual([]);
    expect(await writes.updates()).toBe(0);

    // The window ends (on the app's clock): a sweep writes the row, and two more must not add a second.
    const clock = jest.spyOn(Date, 'now').mockReturnValue(Date.now() + WINDOW_MS + 100);
    try {
      for (let sweep = 0; sweep < 3; sweep++) await demo.app.get(AggregatedAuditLog).flush();
    } finally {
      clock.mockRestore();
    }
    const rows = await invalidTokenRows(ip);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      ip,
      user_agent: 'guesser/1.0',
      details: {
        count: 205,
        reasons: { unknown: LIMIT - 1, malformed: 1, blocked: 200 },
        first_at: expect.any(String),
        last_at: expect.any(String),
      },
    });
  });

  it("does not count a revoked session's token as a guess: it is a real token, and says so", async () => {
    const ip = '203.0.113.14';
    const victim = await login(demo.server, 'bob', from(ip));
    const other = await login(demo.server, 'bob', from(ip));
    await request(demo.server)
      .delete(`/sessions/${victim.sessionId}`)
      .set(from(ip))
      .set(cookie(other.token))
      .expect(204);
    for (let i = 0; i < LIMIT + 3; i++) {
      expect(
        (await request(demo.server).get('/me').set(from(ip)).set(cookie(victim.token)).expect(401)).body.reason,
      ).toBe('revoked');
    }
    await request(demo.server).get('/me').set(from(ip)).set(cookie(other.token)).expect(200);
  });
});
