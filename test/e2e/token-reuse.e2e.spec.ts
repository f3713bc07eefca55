import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { generateToken } from '../../src/session/token/session-token.js';
import { ADAPTERS, cookie, sessionCookie, startDemo, type Adapter, type RunningDemo } from '../support/demo.js';

type Transport = 'cookie' | 'bearer';
const CASES = ADAPTERS.flatMap((a) => (['cookie', 'bearer'] as const).map((t): [Adapter, Transport] => [a, t]));

/** A client: its address (the demo trusts X-Forwarded-For from loopback) and its browser. */
const client = (ip: string, userAgent: string) => ({ 'X-Forwarded-For': ip, 'User-Agent': userAgent });
const VICTIM = client('198.51.100.1', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0');
const THIEF = client('203.0.113.66', 'curl/8.9.1');
const FLOOD_LIMIT = 5;

/**
 * Issue 24: a token from any number of rotations back is theft when it comes back after its
 * grace, not only the previous one. Time passes in SQL (rotated_at and retired_at moved back
 * an hour: the rotation is due and every grace window over), never by sleeping; the cache is
 * off, so the database sees every request.
 */
describe.each(CASES)('reuse of any retired token (%s, %s)', (adapter, transport) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, {
      SESSION_TRANSPORT: transport,
      SESSION_ROTATION_INTERVAL: '1h',
      SESSION_ROTATION_GRACE: '1m',
      SESSION_CACHE: 'off',
      PURGE_CRON: 'off',
      TRUST_PROXY: 'loopback',
      SESSION_FLOOD_LIMIT: String(FLOOD_LIMIT),
    });
  });
  afterAll(async () => demo?.close());

  const as = (token: string) => (transport === 'cookie' ? cookie(token) : { Authorization: `Bearer ${token}` });
  /** The token a response issued (rotation), if any. */
  const issued = (response: request.Response): string | undefined =>
    transport === 'cookie' ? sessionCookie(response) : response.headers['session-token'];
  const me = (token: string, who = VICTIM) => request(demo.server).get('/me').set(who).set(as(token));

  async function login(username: string) {
    const response = await request(demo.server)
      .post('/auth/login')
      .set(VICTIM)
      .send({ username, password: `${username}-password` })
      .expect(200);
    return { token: (sessionCookie(response) ?? response.body.token) as string, sessionId: response.body.sessionId };
  }
  const anHourPasses = (sessionId: string) =>
    Promise.all([
      demo.db.pool.query(`UPDATE user_sessions SET rotated_at = rotated_at - interval '1 hour' WHERE id = $1`, [
        sessionId,
      ]),
      demo.db.pool.query(
        `UPDATE session_retired_tokens SET retired_at = retired_at - interval '1 hour' WHERE session_id = $1`,
        [sessionId],
      ),
    ]);
  /** Logs in and rotates `rotations` times, an hour apart; the tokens oldest first, the last one current. */
  async function sessionWithRotations(username: string, rotations: number) {
    const { token, sessionId } = await login(username);
    const tokens = [token];
    for (let i = 0; i < rotations; i++) {
      await anHourPasses(sessionId);
      const response = await me(tokens.at(-1)!).expect(200);
      expect(response.body.sessionId).toBe(sessionId);
      const next = issued(response);
      expect(next).toMatch(/^[A-Za-z0-9_-]{43}$/);
      tokens.push(next!);
    }
    await anHourPasses(sessionId);
    return { sessionId, tokens };
  }
  const reuseRows = async (sessionId: string) =>
    (
      await demo.db.pool.query(
        `SELECT ip, user_agent, details FROM session_audit_log WHERE session_id = $1 AND event = 'token_reuse_detected'`,
        [sessionId],
      )
    ).rows;

  it.each([1, 2, 5])(
    'the token from %i rotation(s) back, presented after its grace, revokes the session for every holder, once',
    async (behind) => {
      const { sessionId, tokens } = await sessionWithRotations('alice', 5);
      const stolen = tokens[5 - behind];
      const replay = await me(stolen, THIEF).expect(401);
      expect(replay.body.reason).toBe('revoked');
      expect(issued(replay)).toBeUndefined();
      // The victim's current token is revoked too: the server cannot tell which holder is real.
      expect((await me(tokens[5]).expect(401)).body.reason).toBe('revoked');
      expect(await reuseRows(sessionId)).toEqual([
        {
          ip: THIEF['X-Forwarded-For'],
          user_agent: THIEF['User-Agent'],
          details: { reason: 'token_reuse', generation: 5 - behind, current: 5, behind },
        },
      ]);
      const { rows } = await demo.db.pool.query('SELECT data, revoke_reason FROM user_sessions WHERE id = $1', [
        sessionId,
      ]);
      expect(rows).toEqual([{ data: {}, revoke_reason: 'token_reuse' }]);
      // Presented again, it answers as it would for any revoked session's token: the previous token
      // still finds the tombstone ('revoked'), an older one is as unknown as a guess; no second alert.
      expect((await me(stolen, THIEF).expect(401)).body.reason).toBe(behind === 1 ? 'revoked' : 'invalid');
      expect(await reuseRows(sessionId)).toHaveLength(1);
    },
  );

  it('a login that carries a token from 2 rotations back revokes the session it came from, as any request would', async () => {
    const { sessionId, tokens } = await sessionWithRotations('alice', 2);
    const relogin = await request(demo.server)
      .post('/auth/login')
      .set(THIEF)
      .set(as(tokens[0]))
      .send({ username: 'alice', password: 'alice-password' })
      .expect(200);
    expect(relogin.body.sessionId).not.toBe(sessionId);
    expect((await me(tokens[2]).expect(401)).body.reason).toBe('revoked');
    expect(await reuseRows(sessionId)).toEqual([
      {
        ip: THIEF['X-Forwarded-For'],
        user_agent: THIEF['User-Agent'],
        details: { reason: 'token_reuse', generation: 0, current: 2, behind: 2 },
      },
    ]);
    // The login itself stands: its password was checked, and its session is new.
    await me((sessionCookie(relogin) ?? relogin.body.token) as string, THIEF).expect(200);
  });

  it('inside the grace window the token just rotated out still works, and rotates nothing', async () => {
    const { sessionId, tokens } = await sessionWithRotations('bob', 2);
    // The rotation to tokens[3] happens now: tokens[2] is inside its grace, tokens[1] is not.
    const rotation = await me(tokens[2]).expect(200);
    const current = issued(rotation)!;
    const inFlight = await me(tokens[2]).expect(200);
    expect(inFlight.body.sessionId).toBe(sessionId);
    expect(issued(inFlight)).toBeUndefined();
    await me(current).expect(200);
    expect(await reuseRows(sessionId)).toEqual([]);
  });

  it('once the session is revoked, its old tokens count against the flood limit like unknown ones', async () => {
    const ip = '203.0.113.99';
    const from = { ...THIEF, 'X-Forwarded-For': ip };
    const { tokens } = await sessionWithRotations('admin', 5);
    expect((await me(tokens[0], from).expect(401)).body.reason).toBe('revoked'); // detection: not counted
    for (const old of [tokens[0], tokens[1], tokens[2], tokens[3], generateToken()])
      expect((await me(old, from).expect(401)).body.reason).toBe('invalid');
    expect((await me(tokens[1], from).expect(429)).body.reason).toBe('too_many_invalid_tokens');
  });
});
