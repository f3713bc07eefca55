import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AggregatedAuditLog } from '../../src/session/security/aggregated-audit.js';
import { resolveSessionOptions } from '../../src/session/session.options.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { generateToken, hashToken } from '../../src/session/token/session-token.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/demo.js';

const HOUR = 3_600_000;
const WINDOW = 60_000;

describe('security statements and aggregated audit against PostgreSQL', () => {
  let db: TestDatabase;
  let store: SessionStore;
  beforeAll(async () => {
    db = await createTestDatabase();
    store = new SessionStore(db.pool);
  });
  afterAll(async () => db?.drop());

  const rowsOf = async (event: string) =>
    (
      await db.pool.query(
        'SELECT session_id, user_id, ip, user_agent, details FROM session_audit_log WHERE event = $1 ORDER BY id',
        [event],
      )
    ).rows;
  const clear = () => db.pool.query('TRUNCATE session_audit_log');
  const log = (maxSources = 100) =>
    new AggregatedAuditLog(store, resolveSessionOptions({ flood: { window: WINDOW, maxSources } }));

  it('writes nothing until a window ends, then one row per source with the whole count', async () => {
    await clear();
    const audit = log();
    const t0 = Date.now();
    for (let i = 0; i < 1_000; i++)
      audit.record(
        { event: 'invalid_token', source: '192.0.2.1', reason: i % 10 === 0 ? 'malformed' : 'unknown' },
        t0 + i,
      );
    audit.record({ event: 'invalid_token', source: '192.0.2.2', reason: 'unknown', userAgent: 'ua' }, t0);
    await audit.flush({ now: t0 + WINDOW - 1 });
    expect(await rowsOf('invalid_token')).toEqual([]);
    await audit.flush({ now: t0 + WINDOW });
    const rows = await rowsOf('invalid_token');
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.ip === '192.0.2.1')!.details).toMatchObject({
      count: 1_000,
      reasons: { unknown: 900, malformed: 100 },
    });
    expect(rows.find((r) => r.ip === '192.0.2.2')).toMatchObject({ user_agent: 'ua', details: { count: 1 } });
    await audit.flush({ now: t0 + 3 * WINDOW });
    expect(await rowsOf('invalid_token')).toHaveLength(2);
  });

  it("records the window's user agents (first 3 distinct, with counts), not the last request's", async () => {
    await clear();
    const audit = log();
    const t0 = Date.now();
    const seen = (userAgent: string | null, times: number) => {
      for (let i = 0; i < times; i++)
        audit.record({ event: 'invalid_token', source: '198.51.100.1', reason: 'unknown', userAgent }, t0 + i);
    };
    seen('victim-browser/1.0', 5);
    seen('scanner/2.0', 3);
    seen(null, 2);
    seen('curl/8.5', 1);
    seen('fourth/1', 4); // past the 3 kept: counted, not named
    seen('fifth/1', 1);
    seen('attacker-chosen-last/1.0', 1); // the last request of the window erases nothing
    await audit.flush({ now: t0 + WINDOW });
    const [row] = await rowsOf('invalid_token');
    expect(row.user_agent).toBeNull(); // several user agents: the column names none of them
    expect(row.details).toEqual({
      count: 17,
      reasons: { unknown: 17 },
      first_at: expect.any(String),
      last_at: expect.any(String),
      user_agents: [
        { value: 'victim-browser/1.0', count: 5 },
        { value: 'scanner/2.0', count: 3 },
        { value: 'curl/8.5', count: 1 },
      ],
      other_user_agents: 6,
      no_user_agent: 2,
    });
  });

  it('names the user agent in the column only when the window saw exactly one', async () => {
    await clear();
    const audit = log();
    const t0 = Date.now();
    for (let i = 0; i < 3; i++)
      audit.record({ event: 'invalid_token', source: '198.51.100.2', reason: 'unknown', userAgent: 'only/1' }, t0);
    audit.record({ event: 'invalid_token', source: '198.51.100.3', reason: 'unknown', userAgent: 'ua/1' }, t0);
    audit.record({ event: 'invalid_token', source: '198.51.100.3', reason: 'unknown' }, t0);
    await audit.flush({ now: t0 + WINDOW });
    const rows = await rowsOf('invalid_token');
    expect(rows.find((r) => r.ip === '198.51.100.2')).toMatchObject({
      user_agent: 'only/1',
      details: { user_agents: [{ value: 'only/1', count: 3 }] },
    });
    expect(rows.find((r) => r.ip === '198.51.100.3')).toMatchObject({
      user_agent: null,
      details: { user_agents: [{ value: 'ua/1', count: 1 }], no_user_agent: 1 },
    });
  });

  it('keeps the first 5 origins of a CSRF window and counts the requests with later ones', async () => {
    await clear();
    const audit = log();
    const t0 = Date.now();
    for (let i = 0; i < 8; i++)
      audit.record(
        { event: 'csrf_failed', source: '198.51.100.4', reason: 'origin_mismatch', origin: `https://evil${i}.example` },
        t0 + i,
      );
    audit.record(
      { event: 'csrf_failed', source: '198.51.100.4', reason: 'origin_mismatch', origin: 'https://evil0.example' },
      t0 + 9,
    );
    await audit.flush({ now: t0 + WINDOW });
    const [row] = await rowsOf('csrf_failed');
    expect(row.details).toMatchObject({
      count: 9,
      origins: [0, 1, 2, 3, 4].map((i) => `https://evil${i}.example`),
      other_origins: 3,
    });
  });

  it('stays bounded in memory: tallies pushed out of the LRU fold into one overflow row, losing no count', async () => {
    await clear();
    const audit = log(3);
    const t0 = Date.now();
    for (let source = 0; source < 50; source++) {
      for (let i = 0; i < 4; i++)
        audit.record(
          {
            event: 'invalid_token',
            source: `192.0.2.${source}`,
            reason: 'unknown',
            userAgent: source % 2 ? 'odd/1' : 'even/1',
          },
          t0,
        );
    }
    await audit.flush({ all: true });
    const rows = await rowsOf('invalid_token');
    expect(rows).toHaveLength(4); // the 3 most recent sources + 1 overflow row
    const overflow = rows.filter((r) => r.ip === null);
    expect(overflow).toHaveLength(1);
    expect(overflow[0].details).toMatchObject({ folded: 47, count: 47 * 4 });
    // Sources 0..46 folded: 24 even and 23 odd, 4 requests each.
    expect(overflow[0].details.user_agents).toEqual([
      { value: 'even/1', count: 96 },
      { value: 'odd/1', count: 92 },
    ]);
    expect(rows.reduce((sum, r) => sum + r.details.count, 0)).toBe(200);
  });

  it('keeps rows it could not write and writes them, once, on the next sweep', async () => {
    await clear();
    const audit = log();
    audit.record({ event: 'csrf_failed', source: '192.0.2.9', reason: 'csrf_token_missing' });
    await db.pool.query(
      `ALTER TABLE session_audit_log ADD CONSTRAINT test_refuse_csrf CHECK (event <> 'csrf_failed') NOT VALID`,
    );
    try {
      await audit.flush({ all: true });
      expect(await rowsOf('csrf_failed')).toEqual([]);
    } finally {
      await db.pool.query('ALTER TABLE session_audit_log DROP CONSTRAINT test_refuse_csrf');
    }
    await audit.flush();
    await audit.flush();
    expect(await rowsOf('csrf_failed')).toHaveLength(1);
  });

  it('stores hostile request text bounded and without NUL (Postgres refuses NUL in text and jsonb)', async () => {
    await clear();
    const audit = log();
    audit.record({
      event: 'csrf_failed',
      source: '192.0.2.10',
      reason: 'origin_not_allowed',
      userAgent: `a\u0000b${'x'.repeat(5_000)}`,
      origin: `https://e\u0000vil${'y'.repeat(500)}`,
    });
    await audit.flush({ all: true });
    const [row] = await rowsOf('csrf_failed');
    expect(row.user_agent.length).toBeLessThanOrEqual(512);
    expect(row.user_agent).not.toContain('\u0000');
    expect(row.details.origins[0].length).toBeLessThanOrEqual(200);
    expect(row.details.origins[0]).not.toContain('\u0000');
  });

  it('records a client change once, however many concurrent requests bring it', async () => {
    const created = await store.create({
      tokenHash: hashToken(generateToken()),
      replacesTokenHash: null,
      userId: 'user-client',
      data: {},
      idleTimeoutMs: HOUR,
      absoluteTimeoutMs: 2 * HOUR,
      ip: '192.0.2.50',
      userAgent: 'old-agent',
    });
    // One connection per request, all holding the row's old values in their snapshot at once:
    // an open transaction on the row makes them all queue behind it.
    const pool = db.newPool({ max: 21 }); // 20 requests and the blocker
    const wide = new SessionStore(pool);
    const blocker = await pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM user_sessions WHERE id = $1 FOR UPDATE', [created.id]);
      const pending = Array.from({ length: 20 }, () => wide.recordClientChange(created.id, '192.0.2.51', 'new-agent'));
      // Released only once all 20 wait for the row lock, holding their snapshots.
      await eventually(async () => {
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return rows[0].n === 20;
      }, 10_000);
      await blocker.query('COMMIT');
      const results = await Promise.all(pending);
      expect(results.filter((r) => r.ipChanged)).toHaveLength(1);
    } finally {
      blocker.release();
      await pool.end();
    }
    const { rows } = await db.pool.query(
      `SELECT event, details FROM session_audit_log WHERE session_id = $1 AND event IN ('ip_changed', 'ua_changed') ORDER BY event`,
      [created.id],
    );
    expect(rows).toEqual([
      { event: 'ip_changed', details: { from: '192.0.2.50', to: '192.0.2.51' } },
      { event: 'ua_changed', details: { from: 'old-agent', to: 'new-agent' } },
    ]);
  });

  it('counts concurrent logins under a per-user limit exactly (reject) and rolls back a refused one completely', async () => {
    const pool = db.newPool({ max: 30 }); // every login on its own connection, all at once
    const wide = new SessionStore(pool);
    const attempt = () =>
      wide.create({
        tokenHash: hashToken(generateToken()),
        replacesTokenHash: null,
        userId: 'user-limit',
        data: {},
        idleTimeoutMs: HOUR,
        absoluteTimeoutMs: 2 * HOUR,
        ip: null,
        userAgent: null,
        limit: { maxSessionsPerUser: 4, policy: 'reject' },
      });
    const results = await Promise.allSettled(Array.from({ length: 30 }, attempt));
    await pool.end();
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    expect(
      results
        .filter((r) => r.status === 'rejected')
        .every((r) => (r as PromiseRejectedResult).reason.name === 'SessionLimitExceededError'),
    ).toBe(true);
    const {
      rows: [counts],
    } = await db.pool.query(`SELECT
      (SELECT count(*)::int FROM user_sessions WHERE user_id = 'user-limit') AS sessions,
      (SELECT count(*)::int FROM session_audit_log WHERE user_id = 'user-limit') AS events`);
    expect(counts).toEqual({ sessions: 4, events: 4 });
  });
});
