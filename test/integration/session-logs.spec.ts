import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import request from 'supertest';
import { SessionMetrics, SessionPurgeService } from '../../src/session/index.js';
import { csrfTokenFor } from '../../src/session/csrf/csrf-token.js';
import { generateToken } from '../../src/session/token/session-token.js';
import { cookie, login, sessionCookie, startDemo, type RunningDemo } from '../support/demo.js';
import { captureNestLogs, type CapturingLogger } from '../support/log-capture.js';

/** Every spelling of a token or of its hash that could end up in a log line. */
function spellings(token: string): string[] {
  const hash = createHash('sha256').update(token).digest();
  return [
    token,
    csrfTokenFor(token),
    hash.toString('hex'),
    `\\x${hash.toString('hex')}`,
    hash.toString('base64'),
    hash.toString('base64url'),
  ];
}

/**
 * The demo app through a whole session life (login, validation, touch, rotation, step-up,
 * reuse after rotation, invalid tokens up to the flood limit, purge, store outage), with
 * every Nest log line captured: none may carry a token or a token hash.
 */
describe('log lines of the session module', () => {
  let demo: RunningDemo;
  let logs: CapturingLogger;
  const tokens: string[] = [];
  beforeAll(async () => {
    demo = await startDemo('express', {
      PURGE_CRON: 'off',
      SESSION_CACHE: 'off',
      SESSION_ROTATION_GRACE: '0',
      SESSION_FLOOD_LIMIT: '3',
      SESSION_METRICS: 'on',
      TRUST_PROXY: 'loopback',
    });
    logs = captureNestLogs(); // after start: createDemoApp's `logger: false` would replace it
  });
  afterAll(async () => {
    await demo?.app.close(); // the database is dropped by the test
  });

  const lines = () => logs.entries.map((e) => `${e.level} [${e.context}] ${e.message}`);

  it('never contain a token or a token hash, and a store failure is one warning with its cause', async () => {
    const alice = await login(demo.server, 'alice');
    tokens.push(alice.token);
    await request(demo.server).get('/me').set(cookie(alice.token)).expect(200);
    await demo.db.pool.query(
      `UPDATE user_sessions SET rotated_at = now() - interval '1 hour', last_seen_at = now() - interval '2 minutes' WHERE id = $1`,
      [alice.sessionId],
    );
    const rotated = sessionCookie(await request(demo.server).get('/me').set(cookie(alice.token)).expect(200))!;
    tokens.push(rotated);
    const reauth = sessionCookie(
      await request(demo.server)
        .post('/auth/reauthenticate')
        .set(cookie(rotated))
        .send({ password: 'alice-password' })
        .expect(200),
    )!;
    tokens.push(reauth);
    // The first token after rotation (no grace): reuse, the session is revoked.
    await request(demo.server).get('/me').set(cookie(alice.token)).expect(401);

    const bob = await login(demo.server, 'bob');
    tokens.push(bob.token);
    // Unknown tokens from one (other) address until the flood detector warns about that source.
    for (let i = 0; i < 4; i++) {
      const unknown = generateToken();
      tokens.push(unknown);
      await request(demo.server)
        .get('/me')
        .set({ ...cookie(unknown), 'X-Forwarded-For': '203.0.113.9' });
    }
    expect(logs.from('SessionFlood', 'warn')).toHaveLength(1);

    await demo.db.pool.query(`INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
      SELECT sha256(gen_random_uuid()::text::bytea), 'gone-' || g, now() - interval '1 minute', now() + interval '1 hour' FROM generate_series(1, 3) g`);
    await demo.app.get(SessionPurgeService).runOnce();
    await demo.app.get(SessionPurgeService).runOnce();
    // One line per run.
    expect(logs.from('SessionPurgeService', 'log').map((e) => e.message)).toEqual([
      expect.stringMatching(/^purge run \{"sessionsDeleted":3,/),
      expect.stringMatching(/^purge run \{"sessionsDeleted":0,/),
    ]);

    // The database goes away (connections terminated, database dropped): ten failing requests, one warning.
    await demo.db.drop();
    for (let i = 0; i < 10; i++) await request(demo.server).get('/me').set(cookie(bob.token)).expect(503);
    const warnings = logs.from('SessionStore', 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toMatch(/^statement lookupByTokenHash failed: .*(does not exist|terminat|3D000|57P01)/);
    // The same ten show in the metrics as db_error validations.
    expect(await demo.app.get(SessionMetrics).registry!.metrics()).toContain(
      'nest_pg_session_validations_total{outcome="db_error"} 10',
    );

    const all = lines();
    expect(all.length).toBeGreaterThanOrEqual(4);
    for (const token of tokens) {
      for (const secret of spellings(token)) expect(all.filter((line) => line.includes(secret))).toEqual([]);
    }
    // Nor anything shaped like one (a 64-digit hex hash, a 43-character base64url token).
    expect(all.filter((line) => /[0-9a-f]{64}|(?<![\w-])[\w-]{43}(?![\w-])/i.test(line))).toEqual([]);
  });
});
