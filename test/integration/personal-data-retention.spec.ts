import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { RETENTION_SQL } from '../../src/session/privacy/retention.sql.js';
import { PurgeStore } from '../../src/session/purge/purge.store.js';
import { SessionPurgeService } from '../../src/session/purge/session-purge.service.js';
import { resolveSessionOptions, type SessionModuleOptions } from '../../src/session/session.options.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/demo.js';
import { captureNestLogs } from '../support/log-capture.js';
import { findPgBouncer, startPgBouncer } from '../support/pgbouncer.mjs';

captureNestLogs();

const ROWS = 40_000;
const BATCH = 5_000; // the purge's default batch size
const EVENTS = ['created', 'rotated', 'ip_changed', 'ua_changed', 'revoked', 'invalid_token', 'purged', 'logout'];

/**
 * ROWS audit rows over the last 60 days, every kind that stores personal data: ip and
 * user_agent columns, ip_changed/ua_changed from/to, a `revoked` row for a changed user agent,
 * aggregated rows (half of them with ip NULL, naming user agents in details only), and
 * `purged` rows that hold none. Ages are whole days plus 2 hours and some minutes, so no row
 * lies within an hour of the 30-day edge however long the test takes.
 */
async function seedAuditLog(pool: pg.Pool, rows = ROWS): Promise<void> {
  await pool.query(
    `
    INSERT INTO session_audit_log (occurred_at, event, session_id, user_id, ip, user_agent, details)
    SELECT now() - (g % 60) * interval '1 day' - interval '2 hours' - (g % 50) * interval '1 minute',
           e.event, gen_random_uuid(), 'user-' || (g % 500),
           CASE WHEN e.event = 'purged' OR (e.event = 'invalid_token' AND g % 16 = 5) THEN NULL
                ELSE '203.0.113.' || (g % 250) END,
           CASE WHEN e.event = 'purged' OR (e.event = 'invalid_token' AND g % 16 = 5) THEN NULL
                ELSE 'Mozilla/5.0 (seed ' || g || ')' END,
           CASE e.event
             WHEN 'ip_changed' THEN jsonb_build_object('from', '198.51.100.' || (g % 250), 'to', '203.0.113.' || (g % 250))
             WHEN 'ua_changed' THEN jsonb_build_object('from', 'Old/1.0 (' || g || ')', 'to', 'Mozilla/5.0 (seed ' || g || ')')
             WHEN 'revoked' THEN jsonb_build_object('reason', 'ua_changed', 'from', 'Old/1.0', 'to', 'New/2.0')
             WHEN 'invalid_token' THEN jsonb_build_object('count', 7, 'reasons', jsonb_build_object('unknown', 7),
               'user_agents', jsonb_build_array(jsonb_build_object('value', 'curl/8.0 (' || g || ')', 'count', 7)),
               'origins', jsonb_build_array('https://evil.example'))
             WHEN 'purged' THEN jsonb_build_object('expiry', 'idle')
             ELSE jsonb_build_object('reason', 'interval') END
    FROM generate_series(1, $1::int) g
    CROSS JOIN LATERAL (SELECT ($2::text[])[1 + g % 8] AS event) e`,
    [rows, EVENTS],
  );
}

const PERSONAL = `(ip IS NOT NULL OR user_agent IS NOT NULL OR details ?| ARRAY['from', 'to', 'user_agents'])`;
const OLD = `occurred_at < now() - interval '30 days'`;

async function count(pool: pg.Pool, where: string): Promise<number> {
  return (await pool.query(`SELECT count(*)::int AS n FROM session_audit_log WHERE ${where}`)).rows[0].n;
}

/** A digest of every column of the rows younger than the retention: equal before and after means untouched. */
async function youngDigest(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query(
    `SELECT md5(string_agg(a::text, '|' ORDER BY id)) AS digest, count(*)::int AS n
     FROM session_audit_log a WHERE NOT (${OLD})`,
  );
  return `${rows[0].n}:${rows[0].digest}`;
}

function purger(pool: pg.Pool, options: SessionModuleOptions = {}): SessionPurgeService {
  return new SessionPurgeService(
    new PurgeStore(pool),
    resolveSessionOptions({ ...options, purge: { dutyCycle: 1, batchSize: BATCH, ...options.purge } }),
  );
}

describe('personal data retention (purge step, real Postgres, populated audit log)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());
  beforeEach(async () => {
    await db.pool.query('TRUNCATE user_sessions, session_retired_tokens, session_audit_log');
  });

  it('clears ip, user agent and personal details of every row past 30 days, in batches, and nothing younger', async () => {
    await seedAuditLog(db.pool);
    // A live session created long ago keeps its address and user agent.
    await db.pool.query(
      `INSERT INTO user_sessions (token_hash, user_id, created_at, idle_expires_at, absolute_expires_at, ip, user_agent)
       VALUES (sha256('live'::bytea), 'alice', now() - interval '45 days', now() + interval '1 hour',
               now() + interval '1 day', '192.0.2.7', 'Alice/1.0')`,
    );
    const eligible = await count(db.pool, `${OLD} AND ${PERSONAL}`);
    expect(eligible).toBeGreaterThan(3 * BATCH);
    const young = await youngDigest(db.pool);
    const oldRows = await count(db.pool, OLD);

    const result = await purger(db.pool).runOnce();

    expect(result).toMatchObject({ auditRowsCleared: eligible, auditRowsDeleted: 0, sessionsDeleted: 0 });
    expect(result.batches).toBe(Math.ceil(eligible / BATCH));
    expect(await count(db.pool, `${OLD} AND ${PERSONAL}`)).toBe(0);
    expect(await count(db.pool, OLD)).toBe(oldRows); // rows stay, without who they came from
    expect(await youngDigest(db.pool)).toBe(young);
    // What is not personal survives: the events, their reasons and counts.
    const { rows } = await db.pool.query(
      `SELECT event, details FROM session_audit_log WHERE ${OLD} AND event IN ('revoked', 'invalid_token') ORDER BY id LIMIT 16`,
    );
    for (const row of rows) {
      if (row.event === 'revoked') expect(row.details).toEqual({ reason: 'ua_changed' });
      else
        expect(row.details).toEqual({
          count: 7,
          reasons: { unknown: 7 },
          origins: ['https://evil.example'],
        });
    }
    const { rows: live } = await db.pool.query(`SELECT ip, user_agent FROM user_sessions WHERE user_id = 'alice'`);
    expect(live).toEqual([{ ip: '192.0.2.7', user_agent: 'Alice/1.0' }]);

    // Idempotent: the next run finds nothing and changes nothing.
    const digestAll = (
      await db.pool.query(`SELECT md5(string_agg(a::text, '|' ORDER BY id)) AS d FROM session_audit_log a`)
    ).rows[0].d;
    expect(await purger(db.pool).runOnce()).toMatchObject({ auditRowsCleared: 0, batches: 0 });
    expect(
      (await db.pool.query(`SELECT md5(string_agg(a::text, '|' ORDER BY id)) AS d FROM session_audit_log a`)).rows[0].d,
    ).toBe(digestAll);
  });

  it('with nothing to clear, reads only the partial index: no sequential scan, a handful of pages', async () => {
    await seedAuditLog(db.pool);
    await purger(db.pool).runOnce();
    await db.pool.query('VACUUM ANALYZE session_audit_log');
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const [{ 'QUERY PLAN': plans }] = (
        await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${RETENTION_SQL.clearPersonalData.text}`, [
          30 * 86_400_000,
          BATCH,
        ])
      ).rows;
      await client.query('ROLLBACK');
      type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };
      const below = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(below)];
      // The batch's choice of rows (the Limit); the UPDATE's join then probes only what it chose.
      const batch = below(plans[0].Plan).find((node) => node['Node Type'] === 'Limit')!;
      const { rows: personal } = await db.pool.query(
        `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'session_audit_log_personal_idx'::regclass`,
      );
      const personalIndexes = new Set(personal.map((r) => r.relname as string));
      const scans = below(batch).filter((node) => node['Relation Name'] !== undefined);
      const pagesOf = (node: PlanNode) => Number(node['Shared Hit Blocks']) + Number(node['Shared Read Blocks']);
      expect(scans.length).toBeGreaterThan(1);
      // Each partition is read through its copy of the partial index; only an empty one may be read whole.
      for (const scan of scans)
        if (scan['Node Type'] === 'Seq Scan') expect(pagesOf(scan)).toBe(0);
        else expect(personalIndexes.has(String(scan['Index Name'] ?? below(scan)[1]?.['Index Name']))).toBe(true);
      const { rows: size } = await db.pool.query(
        `SELECT sum(relpages)::int AS pages FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
         WHERE i.inhparent = 'session_audit_log'::regclass`,
      );
      expect(size[0].pages).toBeGreaterThan(500);
      expect(pagesOf(plans[0].Plan)).toBeLessThan(size[0].pages / 20);
      expect(await count(db.pool, 'true')).toBe(ROWS);
    } finally {
      client.release();
    }
  });

  it('resumes after a shutdown between batches: the next run clears the rest, each batch all or nothing', async () => {
    await seedAuditLog(db.pool);
    // Rows move out of DEFAULT into weekly partitions first, so the count below never races that move.
    await purger(db.pool, { privacy: { personalDataRetention: false } }).runOnce();
    const eligible = await count(db.pool, `${OLD} AND ${PERSONAL}`);
    // After a batch the run pauses 999 times as long as it took: stopped there.
    const purge = purger(db.pool, { purge: { dutyCycle: 0.001 } });
    const run = purge.runOnce();
    await eventually(async () => (await count(db.pool, `${OLD} AND ${PERSONAL}`)) < eligible, 10_000, 10);
    await purge.onApplicationShutdown();
    const first = await run;
    expect(first).toMatchObject({ interrupted: true, auditRowsCleared: BATCH, batches: 1 });
    expect(await count(db.pool, `${OLD} AND ${PERSONAL}`)).toBe(eligible - BATCH);

    const rest = await purger(db.pool).runOnce();
    expect(rest).toMatchObject({ auditRowsCleared: eligible - BATCH });
    expect(rest.interrupted).toBeUndefined();
    expect(await count(db.pool, `${OLD} AND ${PERSONAL}`)).toBe(0);
  });

  it('leaves a row someone holds locked for the next run instead of waiting on it', async () => {
    await seedAuditLog(db.pool, 800);
    const eligible = await count(db.pool, `${OLD} AND ${PERSONAL}`);
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      const { rows } = await holder.query(
        `SELECT id FROM session_audit_log WHERE ${OLD} AND ip IS NOT NULL ORDER BY occurred_at LIMIT 1 FOR UPDATE`,
      );
      const started = Date.now();
      expect(await purger(db.pool).runOnce()).toMatchObject({ auditRowsCleared: eligible - 1 });
      expect(Date.now() - started).toBeLessThan(2_000); // lock_timeout is 2 s: it never waited
      await holder.query('COMMIT');
      expect(await count(db.pool, `id = ${rows[0].id} AND ip IS NOT NULL`)).toBe(1);
    } finally {
      holder.release();
    }
    expect(await purger(db.pool).runOnce()).toMatchObject({ auditRowsCleared: 1 });
  });

  it('honours its option: false clears nothing, a shorter retention clears more, default stays at most auditRetention', async () => {
    await seedAuditLog(db.pool, 6_000);
    const all = await count(db.pool, PERSONAL);
    expect(await purger(db.pool, { privacy: { personalDataRetention: false } }).runOnce()).toMatchObject({
      auditRowsCleared: 0,
    });
    expect(await count(db.pool, PERSONAL)).toBe(all);

    const older10 = await count(db.pool, `occurred_at < now() - interval '10 days' AND ${PERSONAL}`);
    expect(await purger(db.pool, { privacy: { personalDataRetention: '10d' } }).runOnce()).toMatchObject({
      auditRowsCleared: older10,
    });
    // auditRetention 5d: the default personal-data retention follows it down (rows past 5 days
    // are in partitions kept until their whole week passes, or deleted from DEFAULT).
    const run = await purger(db.pool, { purge: { auditRetention: '5d' } }).runOnce();
    expect(run.auditRowsCleared).toBeGreaterThan(0);
    expect(await count(db.pool, `occurred_at < now() - interval '5 days' AND ${PERSONAL}`)).toBe(0);
    expect(await count(db.pool, `occurred_at >= now() - interval '5 days' AND ${PERSONAL}`)).toBeGreaterThan(0);
  });

  const withPgBouncer = findPgBouncer() !== undefined ? it : it.skip;
  withPgBouncer('works behind PgBouncer in transaction mode, several batches', async () => {
    await seedAuditLog(db.pool, 8_000);
    const eligible = await count(db.pool, `${OLD} AND ${PERSONAL}`);
    const bouncer = await startPgBouncer({
      serverUrl: process.env.DATABASE_URL!,
      poolMode: 'transaction',
      poolSize: 2,
    });
    const pool = new pg.Pool({ connectionString: bouncer.url(db.name), max: 3 });
    try {
      const result = await purger(pool, { purge: { batchSize: 1_000 } }).runOnce();
      expect(result).toMatchObject({ auditRowsCleared: eligible, batches: Math.ceil(eligible / 1_000) });
      expect(await count(db.pool, `${OLD} AND ${PERSONAL}`)).toBe(0);
    } finally {
      await pool.end();
      await bouncer.stop();
    }
  });
});
