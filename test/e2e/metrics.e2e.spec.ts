import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { SessionPurgeService } from '../../src/session/index.js';
import { generateToken } from '../../src/session/token/session-token.js';
import { ADAPTERS, cookie, login, sessionCookie, startDemo, type RunningDemo } from '../support/demo.js';

const P = 'nest_pg_session_';

/**
 * One sample of the Prometheus text format: `name{a="x",b="y"} 12`. Throws when absent (a
 * missing metric fails loudly) unless `absent` is given.
 */
function sample(text: string, name: string, labels: Record<string, string> = {}, absent?: number): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = match[2] ? match[2].split(',') : [];
    if (got.length === wanted.length && wanted.every((w) => got.includes(w))) return Number(match[3]);
  }
  if (absent !== undefined) return absent;
  throw new Error(`no sample ${name}${JSON.stringify(labels)} in:\n${text}`);
}

describe.each(ADAPTERS)('Prometheus metrics of the demo (%s)', (adapter) => {
  let demo: RunningDemo;
  let admin: string;
  beforeAll(async () => {
    // No scheduled purge: the test runs it, so its counters move only when the test says.
    // Cache off: the test edits rows behind the module's back (no NOTIFY), and counts lookups per request.
    demo = await startDemo(adapter, { SESSION_METRICS: 'on', PURGE_CRON: 'off', SESSION_CACHE: 'off' });
    admin = (await login(demo.server, 'admin')).token;
  });
  afterAll(async () => demo?.close());

  const scrape = async () => {
    const response = await request(demo.server).get('/metrics').set(cookie(admin)).expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text;
  };
  const sql = (text: string, values: unknown[]) => demo.db.pool.query(text, values);

  it('counts validations by outcome, store statements, touches and rotations by exactly the requests made', async () => {
    const before = await scrape();
    const delta = (after: string, name: string, labels: Record<string, string> = {}) =>
      sample(after, name, labels) - sample(before, name, labels, 0); // a histogram series appears with its first observation
    let lookups = 0;

    const alice = await login(demo.server, 'alice');
    let aliceToken = alice.token;
    for (let i = 0; i < 3; i++) await request(demo.server).get('/me').set(cookie(aliceToken)).expect(200);
    lookups += 3;
    await request(demo.server).get('/me').expect(401); // missing: no SQL
    await request(demo.server).get('/me').set(cookie('not-a-token')).expect(401); // malformed: invalid, no SQL
    await request(demo.server).get('/me').set(cookie(generateToken())).expect(401); // unknown: invalid, one lookup
    lookups += 1;

    const expired = await login(demo.server, 'bob');
    await sql(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
      expired.sessionId,
    ]);
    expect((await request(demo.server).get('/me').set(cookie(expired.token)).expect(401)).body.reason).toBe(
      'idle_timeout',
    );
    const revoked = await login(demo.server, 'bob');
    await sql(`UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'admin' WHERE id = $1`, [
      revoked.sessionId,
    ]);
    expect((await request(demo.server).get('/me').set(cookie(revoked.token)).expect(401)).body.reason).toBe('revoked');
    lookups += 2;

    // A stale last_seen_at: this request touches (one UPDATE).
    await sql(`UPDATE user_sessions SET last_seen_at = now() - interval '2 minutes' WHERE id = $1`, [alice.sessionId]);
    await request(demo.server).get('/me').set(cookie(aliceToken)).expect(200);
    // Rotation due: this request rotates the token (reason 'interval').
    await sql(`UPDATE user_sessions SET rotated_at = now() - interval '1 hour' WHERE id = $1`, [alice.sessionId]);
    const rotated = await request(demo.server).get('/me').set(cookie(aliceToken)).expect(200);
    aliceToken = sessionCookie(rotated)!;
    expect(aliceToken).toBeDefined();
    // Step-up: another rotation, reason 'reauthenticated'.
    const reauth = await request(demo.server)
      .post('/auth/reauthenticate')
      .set(cookie(aliceToken))
      .send({ password: 'alice-password' })
      .expect(200);
    expect(sessionCookie(reauth)).toBeDefined();
    lookups += 3;

    const after = await scrape();
    lookups += 1; // the scrape's own session check

    // The scrape itself is a valid admin request: 3 + touch + rotate + reauth + scrape = 7.
    expect(delta(after, `${P}validations_total`, { outcome: 'ok' })).toBe(7);
    expect(delta(after, `${P}validations_total`, { outcome: 'missing' })).toBe(1);
    expect(delta(after, `${P}validations_total`, { outcome: 'invalid' })).toBe(2);
    expect(delta(after, `${P}validations_total`, { outcome: 'expired' })).toBe(1);
    expect(delta(after, `${P}validations_total`, { outcome: 'revoked' })).toBe(1);
    expect(delta(after, `${P}validations_total`, { outcome: 'db_error' })).toBe(0);
    // One indexed read per request with a well-formed token, none for missing or malformed ones.
    expect(delta(after, `${P}store_query_duration_seconds_count`, { statement: 'lookupByTokenHash' })).toBe(lookups);
    expect(delta(after, `${P}store_query_duration_seconds_count`, { statement: 'create' })).toBe(3);
    expect(delta(after, `${P}store_query_duration_seconds_count`, { statement: 'touchIfStale' })).toBe(1);
    expect(delta(after, `${P}store_query_duration_seconds_count`, { statement: 'rotate' })).toBe(2);
    expect(
      sample(after, `${P}store_query_duration_seconds_bucket`, { statement: 'lookupByTokenHash', le: '+Inf' }),
    ).toBe(sample(after, `${P}store_query_duration_seconds_count`, { statement: 'lookupByTokenHash' }));
    expect(delta(after, `${P}touches_total`)).toBe(1);
    expect(delta(after, `${P}rotations_total`, { reason: 'interval' })).toBe(1);
    expect(delta(after, `${P}rotations_total`, { reason: 'reauthenticated' })).toBe(1);
    expect(delta(after, `${P}rotations_total`, { reason: 'manual' })).toBe(0);
    // Defined for the cache, which calls SessionMetrics.cacheHit()/cacheMiss(); nothing caches yet.
    expect(sample(after, `${P}cache_hits_total`)).toBe(0);
    expect(sample(after, `${P}cache_misses_total`)).toBe(0);
  });

  it('samples active sessions at most once a minute, not on every scrape', async () => {
    const first = sample(await scrape(), `${P}active_sessions`);
    const { rows } = await sql(
      `SELECT count(*)::int AS n FROM user_sessions
      WHERE revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()`,
      [],
    );
    expect(first).toBeGreaterThanOrEqual(1);
    expect(first).toBeLessThanOrEqual(rows[0].n);
    await login(demo.server, 'alice');
    await login(demo.server, 'alice');
    expect(sample(await scrape(), `${P}active_sessions`)).toBe(first);
  });

  it('counts purge runs, the rows they deleted and their duration', async () => {
    const before = await scrape();
    await sql(
      `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
      SELECT sha256(gen_random_uuid()::text::bytea), 'gone-' || g, now() - interval '1 minute', now() + interval '1 hour'
      FROM generate_series(1, 4) g`,
      [],
    );
    // Two audit rows past privacy.personalDataRetention (30 days): their address and user agent go.
    await sql(
      `INSERT INTO session_audit_log (event, occurred_at, ip, user_agent)
      SELECT 'created', now() - interval '40 days', '203.0.113.' || g, 'Old/1.0' FROM generate_series(1, 2) g`,
      [],
    );
    const result = await demo.app.get(SessionPurgeService).runOnce();
    expect(result).toMatchObject({ sessionsDeleted: 4, auditRowsCleared: 2 });
    const after = await scrape();
    expect(
      sample(after, `${P}purge_personal_data_cleared_total`) - sample(before, `${P}purge_personal_data_cleared_total`),
    ).toBe(2);
    expect(
      sample(after, `${P}purge_rows_total`, { kind: 'sessions' }) -
        sample(before, `${P}purge_rows_total`, { kind: 'sessions' }),
    ).toBe(4);
    expect(
      sample(after, `${P}purge_runs_total`, { result: 'ok' }) -
        sample(before, `${P}purge_runs_total`, { result: 'ok' }),
    ).toBe(1);
    expect(sample(after, `${P}purge_duration_seconds_count`) - sample(before, `${P}purge_duration_seconds_count`)).toBe(
      1,
    );
  });

  it('serves /metrics to admins only: 401 without a session, 403 for a user', async () => {
    await request(demo.server).get('/metrics').expect(401);
    const alice = await login(demo.server, 'alice');
    const refused = await request(demo.server).get('/metrics').set(cookie(alice.token)).expect(403);
    expect(refused.text).not.toContain(P);
  });
});

describe('metrics off', () => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo('express', { SESSION_METRICS: 'off', PURGE_CRON: 'off' });
  });
  afterAll(async () => demo?.close());

  it('has no /metrics route', async () => {
    const admin = await login(demo.server, 'admin');
    await request(demo.server).get('/metrics').set(cookie(admin.token)).expect(404);
  });
});
