import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionEvents } from '../../src/session/audit/session-events.js';
import type { SessionAuditRecord } from '../../src/session/audit/audit-record.js';
import { AUDIT_PARTITION_SQL } from '../../src/session/purge/audit-partitions.sql.js';
import { PURGE_SQL } from '../../src/session/purge/purge.sql.js';
import { PURGE_LEASE_MS, PurgeStore } from '../../src/session/purge/purge.store.js';
import { SessionPurgeService } from '../../src/session/purge/session-purge.service.js';
import { resolveSessionOptions, type SessionPurgeOptions } from '../../src/session/session.options.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/demo.js';
import { captureNestLogs } from '../support/log-capture.js';

const logs = captureNestLogs();

interface SeedRow {
  user: string;
  /** Seconds from now (negative: in the past). */
  idle: number;
  absolute: number;
  revokedReason?: string;
}

/** Inserts sessions with deadlines relative to the database clock; returns their ids by user. */
async function seed(pool: pg.Pool, rows: SeedRow[]): Promise<Record<string, string>> {
  const { rows: inserted } = await pool.query(
    `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at, revoked_at, revoke_reason)
     SELECT sha256(gen_random_uuid()::text::bytea), u, now() + idle * interval '1 second', now() + absolute * interval '1 second',
            CASE WHEN reason IS NULL THEN NULL ELSE now() - interval '1 minute' END, reason
     FROM unnest($1::text[], $2::int[], $3::int[], $4::text[]) AS t(u, idle, absolute, reason)
     RETURNING id, user_id`,
    [
      rows.map((r) => r.user),
      rows.map((r) => r.idle),
      rows.map((r) => r.absolute),
      rows.map((r) => r.revokedReason ?? null),
    ],
  );
  return Object.fromEntries(inserted.map((r) => [r.user_id, r.id]));
}

/** `count` sessions of user `${prefix}-<n>` with the same relative deadlines (fast, in SQL). */
async function seedMany(pool: pg.Pool, count: number, prefix: string, idle: number, absolute: number): Promise<void> {
  await pool.query(
    `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
     SELECT sha256(gen_random_uuid()::text::bytea), $2 || '-' || g, now() + $3 * interval '1 second', now() + $4 * interval '1 second'
     FROM generate_series(1, $1) g`,
    [count, prefix, idle, absolute],
  );
}

function purger(pool: pg.Pool, purge: SessionPurgeOptions = {}): SessionPurgeService {
  return new SessionPurgeService(new PurgeStore(pool), resolveSessionOptions({ purge: { dutyCycle: 1, ...purge } }));
}

async function purgedAuditRows(pool: pg.Pool) {
  const { rows } = await pool.query(
    `SELECT session_id, user_id, details, actor_id FROM session_audit_log WHERE event = 'purged' ORDER BY id`,
  );
  return rows;
}

async function count(pool: pg.Pool, sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${sql}`, values);
  return rows[0].n;
}

/** The purge lease, held by any purger of this test's database right now? */
async function purgeLockHeld(pool: pg.Pool): Promise<boolean> {
  return (await count(pool, `session_purge_lease WHERE expires_at > now()`)) > 0;
}

describe('session purge (store level, real Postgres)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());
  beforeEach(async () => {
    await db.pool.query('TRUNCATE user_sessions, session_retired_tokens, session_audit_log');
    logs.clear();
  });

  it('deletes only expired sessions, each with exactly one purged audit row naming the expiry that applied', async () => {
    const ids = await seed(db.pool, [
      { user: 'idle-expired', idle: -60, absolute: 3_600 },
      { user: 'absolute-expired', idle: 600, absolute: -5 },
      { user: 'both-idle-first', idle: -7_200, absolute: -3_600 },
      { user: 'both-absolute-first', idle: -60, absolute: -3_600 },
      { user: 'revoked-expired', idle: -60, absolute: 3_600, revokedReason: 'user' },
      { user: 'live', idle: 600, absolute: 3_600 },
      { user: 'live-for-one-more-second', idle: 1, absolute: 3_600 },
      { user: 'revoked-tombstone-kept', idle: 600, absolute: 3_600, revokedReason: 'admin' },
    ]);
    const deadlines = Object.fromEntries(
      (
        await db.pool.query(
          `SELECT user_id, LEAST(idle_expires_at, absolute_expires_at) AS ends, revoked_at FROM user_sessions`,
        )
      ).rows.map((r) => [r.user_id, r]),
    );

    const result = await purger(db.pool).runOnce();

    expect(result).toMatchObject({ sessionsDeleted: 5, auditRowsDeleted: 0 });
    expect(result.skipped).toBeUndefined();
    const left = (await db.pool.query('SELECT user_id FROM user_sessions ORDER BY user_id')).rows.map((r) => r.user_id);
    expect(left).toEqual(['live', 'live-for-one-more-second', 'revoked-tombstone-kept']);

    const audit = await purgedAuditRows(db.pool);
    expect(audit).toHaveLength(5);
    const byUser = Object.fromEntries(audit.map((r) => [r.user_id, r]));
    expect(Object.keys(byUser).sort()).toEqual([
      'absolute-expired',
      'both-absolute-first',
      'both-idle-first',
      'idle-expired',
      'revoked-expired',
    ]);
    const expectedExpiry: Record<string, string> = {
      'idle-expired': 'idle',
      'absolute-expired': 'absolute',
      'both-idle-first': 'idle',
      'both-absolute-first': 'absolute',
      'revoked-expired': 'revoked',
    };
    for (const [user, expiry] of Object.entries(expectedExpiry)) {
      const row = byUser[user];
      expect(row.session_id).toBe(ids[user]);
      expect(row.actor_id).toBeNull();
      expect(row.details.expiry).toBe(expiry);
      expect(new Date(row.details.expiredAt).getTime()).toBe(deadlines[user].ends.getTime());
    }
    expect(byUser['revoked-expired'].details).toMatchObject({ reason: 'user' });
    expect(new Date(byUser['revoked-expired'].details.revokedAt).getTime()).toBe(
      deadlines['revoked-expired'].revoked_at.getTime(),
    );
    expect(byUser['idle-expired'].details).not.toHaveProperty('reason');

    // Nothing left to do: a second run deletes nothing and writes no audit row. (The row one
    // second from its deadline gets an hour more first, so a slow machine cannot expire it meanwhile.)
    await db.pool.query(
      `UPDATE user_sessions SET idle_expires_at = now() + interval '1 hour' WHERE user_id = 'live-for-one-more-second'`,
    );
    expect(await purger(db.pool).runOnce()).toMatchObject({ sessionsDeleted: 0, batches: 0 });
    expect(await purgedAuditRows(db.pool)).toHaveLength(5);
  });

  it('works in batches of batchSize, one audit row per deleted session, live rows untouched', async () => {
    await seedMany(db.pool, 1_200, 'idle', -60, 3_600);
    await seedMany(db.pool, 800, 'absolute', 600, -60);
    await seedMany(db.pool, 500, 'live', 600, 3_600);

    const result = await purger(db.pool, { batchSize: 500 }).runOnce();

    // idle pass: 500 + 500 + 200; absolute pass: 500 + 300
    expect(result).toMatchObject({ sessionsDeleted: 2_000, auditRowsDeleted: 0, batches: 5 });
    expect(await count(db.pool, 'user_sessions')).toBe(500);
    expect(await count(db.pool, `user_sessions WHERE user_id NOT LIKE 'live-%'`)).toBe(0);
    expect(await count(db.pool, `session_audit_log WHERE event = 'purged'`)).toBe(2_000);
    expect(await count(db.pool, `(SELECT DISTINCT session_id FROM session_audit_log) d`)).toBe(2_000);
    expect(await count(db.pool, `session_audit_log WHERE details->>'expiry' = 'absolute'`)).toBe(800);
    const line = logs.from('SessionPurgeService', 'log').at(-1)!.message;
    expect(line).toMatch(
      /^purge run \{"sessionsDeleted":2000,"auditRowsDeleted":0,"auditPartitionsCreated":0,"auditPartitionsDropped":0,"auditRowsCleared":0,"batches":5,"durationMs":\d+\}$/,
    );
  });

  it('emits each purged row to SessionEvents observers after its batch committed, and fetches none without observers', async () => {
    await seedMany(db.pool, 250, 'idle', -60, 3_600);
    const events = new SessionEvents();
    const seen: SessionAuditRecord[] = [];
    const subscription = events.on('purged').subscribe((record) => seen.push(record));
    const purge = new SessionPurgeService(
      new PurgeStore(db.pool),
      resolveSessionOptions({ purge: { batchSize: 100, dutyCycle: 1 } }),
      undefined,
      events,
    );

    expect(await purge.runOnce()).toMatchObject({ sessionsDeleted: 250, batches: 3 });
    subscription.unsubscribe();

    const stored = await purgedAuditRows(db.pool);
    expect(seen.map((r) => r.sessionId).sort()).toEqual(stored.map((r) => r.session_id).sort());
    expect(seen.every((r) => r.event === 'purged' && r.details.expiry === 'idle' && r.actorId === null)).toBe(true);
    expect(new Set(seen.map((r) => r.id)).size).toBe(250);

    // Nobody listening: the rows are not even sent back by the database.
    await seedMany(db.pool, 10, 'more', -60, 3_600);
    expect(events.observed).toBe(false);
    const connection = await new PurgeStore(db.pool).connect();
    try {
      expect(await connection.tryLock()).toBe(true);
      expect(await connection.purgeExpiredSessions('idle', 100, false)).toEqual({ deleted: 10, auditRows: [] });
    } finally {
      await connection.release();
    }
    expect(seen).toHaveLength(250);
  });

  it('plans each batch as an index range scan, never a sequential scan of the table', async () => {
    await seedMany(db.pool, 10_000, 'idle', -60, 3_600);
    await seedMany(db.pool, 10_000, 'live', 600, 3_600);
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at) SELECT 'created', now() - g * interval '1 hour' FROM generate_series(1, 20000) g`,
    );
    await db.pool.query('ANALYZE user_sessions; ANALYZE session_audit_log');
    const plan = async (sql: string, values: unknown[]) =>
      JSON.stringify((await db.pool.query(`EXPLAIN (FORMAT JSON) ${sql}`, values)).rows[0]['QUERY PLAN']);

    const idle = await plan(PURGE_SQL.purgeIdleExpired.text, [5_000, false, true]);
    const absolute = await plan(PURGE_SQL.purgeAbsoluteExpired.text, [5_000, false, true]);
    const audit = await plan(AUDIT_PARTITION_SQL.purgeOldDefaultRows.text, [90 * 86_400_000, 5_000]);

    expect(idle).toContain('user_sessions_idle_expires_at_idx');
    expect(absolute).toContain('user_sessions_absolute_expires_at_idx');
    expect(audit).toMatch(/session_audit_log_default_occurred_at_id_idx/); // the DEFAULT partition's copy of the time index
    for (const p of [idle, absolute, audit]) expect(p).not.toContain('Seq Scan');
  });

  it('skips a row a request holds locked instead of waiting for it, and leaves exactly one audit row for it', async () => {
    const ids = await seed(db.pool, [
      { user: 'busy', idle: -60, absolute: 3_600 },
      { user: 'free', idle: -60, absolute: 3_600 },
    ]);
    const request = await db.pool.connect();
    try {
      await request.query('BEGIN');
      await request.query('SELECT 1 FROM user_sessions WHERE id = $1 FOR UPDATE', [ids.busy]);

      const started = Date.now();
      const result = await purger(db.pool).runOnce();
      // Without SKIP LOCKED this would wait for the row, then fail at the 2 s lock_timeout.
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(result.sessionsDeleted).toBe(1);
      expect(await count(db.pool, 'user_sessions WHERE id = $1', [ids.busy])).toBe(1);

      // The request finishes what it was doing: it expires the session itself.
      await request.query(
        `WITH gone AS (DELETE FROM user_sessions WHERE id = $1 RETURNING id, user_id)
        INSERT INTO session_audit_log (event, session_id, user_id) SELECT 'expired_idle', id, user_id FROM gone`,
        [ids.busy],
      );
      await request.query('COMMIT');
    } finally {
      request.release();
    }
    expect(await purger(db.pool).runOnce()).toMatchObject({ sessionsDeleted: 0 });
    const events = (await db.pool.query('SELECT session_id, event FROM session_audit_log ORDER BY session_id')).rows;
    expect(events).toHaveLength(2);
    expect(events.find((e) => e.session_id === ids.busy)?.event).toBe('expired_idle');
    expect(events.find((e) => e.session_id === ids.free)?.event).toBe('purged');
  });

  it('racing the request path on the same expired sessions, every session gets exactly one ending event', async () => {
    await seedMany(db.pool, 400, 'race', -60, 3_600);
    const ids = (await db.pool.query('SELECT id FROM user_sessions')).rows.map((r) => r.id as string);
    const store = new SessionStore(db.pool);
    const requests = (async () => {
      for (let i = 0; i < ids.length; i += 8) {
        await Promise.all(ids.slice(i, i + 8).map((id) => store.deleteWithEvent(id, 'expired_idle', {})));
      }
    })();
    const purgeRun = purger(db.pool, { batchSize: 20 }).runOnce();
    const [, result] = await Promise.all([requests, purgeRun]);

    expect(await count(db.pool, 'user_sessions')).toBe(0);
    const perSession = (
      await db.pool.query(`SELECT session_id, count(*)::int AS n FROM session_audit_log GROUP BY session_id`)
    ).rows;
    expect(perSession).toHaveLength(400);
    expect(perSession.every((r) => r.n === 1)).toBe(true);
    expect(await count(db.pool, `session_audit_log WHERE event = 'purged'`)).toBe(result.sessionsDeleted);
  });

  it('deletes audit rows older than the retention, oldest first in batches, and keeps the rest', async () => {
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at) SELECT 'created', now() - interval '100 days' - g * interval '1 minute' FROM generate_series(1, 1200) g`,
    );
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at) SELECT 'rotated', now() - interval '89 days' FROM generate_series(1, 10)`,
    );
    await db.pool.query(`INSERT INTO session_audit_log (event) SELECT 'logout' FROM generate_series(1, 10)`);
    await seedMany(db.pool, 3, 'idle', -60, 3_600);

    const result = await purger(db.pool, { batchSize: 500 }).runOnce();

    // 1 session batch, then audit batches of 500 + 500 + 200
    expect(result).toMatchObject({ sessionsDeleted: 3, auditRowsDeleted: 1_200, batches: 4 });
    expect(await count(db.pool, `session_audit_log WHERE occurred_at < now() - interval '90 days'`)).toBe(0);
    expect(await count(db.pool, `session_audit_log WHERE event IN ('rotated', 'logout')`)).toBe(20);
    expect(await count(db.pool, `session_audit_log WHERE event = 'purged'`)).toBe(3);
  });

  it('honours a custom retention, and auditRetention: false keeps every audit row', async () => {
    await db.pool.query(
      // 15 days: the whole week of that row ends before now - 7 days, so its partition goes
      `INSERT INTO session_audit_log (event, occurred_at) VALUES ('created', now() - interval '15 days'), ('created', now() - interval '6 days'), ('created', now() - interval '3 years')`,
    );

    expect(await purger(db.pool, { auditRetention: false }).runOnce()).toMatchObject({ auditRowsDeleted: 0 });
    expect(await count(db.pool, 'session_audit_log')).toBe(3);

    expect(await purger(db.pool, { auditRetention: '7d' }).runOnce()).toMatchObject({ auditRowsDeleted: 2 });
    expect(await count(db.pool, `session_audit_log WHERE occurred_at > now() - interval '7 days'`)).toBe(1);
  });

  it('two purgers started at once on two connections: exactly one runs, the other skips without waiting', async () => {
    await seedMany(db.pool, 3_000, 'idle', -60, 3_600);
    const poolA = db.newPool({ max: 2 });
    const poolB = db.newPool({ max: 2 });
    try {
      // Small batches with pauses, so the winner is still purging when the other asks.
      const options = { batchSize: 100, dutyCycle: 0.5 };
      const results = await Promise.all([purger(poolA, options).runOnce(), purger(poolB, options).runOnce()]);

      const ran = results.filter((r) => r.skipped === undefined);
      const skipped = results.filter((r) => r.skipped === 'locked');
      expect(ran).toHaveLength(1);
      expect(skipped).toHaveLength(1);
      expect(ran[0].sessionsDeleted).toBe(3_000);
      expect(skipped[0]).toMatchObject({ sessionsDeleted: 0, auditRowsDeleted: 0, batches: 0 });
      expect(skipped[0].durationMs).toBeLessThan(ran[0].durationMs / 2);
      expect(await count(db.pool, `session_audit_log WHERE event = 'purged'`)).toBe(3_000);
      expect(logs.from('SessionPurgeService', 'log').some((l) => l.message.includes('"skipped":"locked"'))).toBe(true);
    } finally {
      await Promise.all([poolA.end(), poolB.end()]);
    }
  });

  it('gives the lock back after every run, so no pooled connection keeps it', async () => {
    await seedMany(db.pool, 10, 'idle', -60, 3_600);
    const pool = db.newPool({ max: 1 });
    try {
      await purger(pool).runOnce();
      expect(pool.idleCount).toBe(1); // the purge's connection went back to the pool...
      expect(await purgeLockHeld(db.pool)).toBe(false); // ...without the lock
      // And with the same pooled connection, another instance can take its turn.
      expect((await purger(db.pool).runOnce()).skipped).toBeUndefined();
    } finally {
      await pool.end();
    }
  });

  it('gives the lock back when a batch fails, and the run reports the failure', async () => {
    await seedMany(db.pool, 10, 'idle', -60, 3_600);
    const migration = await db.pool.connect();
    try {
      await migration.query('BEGIN');
      await migration.query('LOCK TABLE session_audit_log IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      // The purge's lock_timeout ends the run instead of queueing behind the table lock.
      await expect(purger(db.pool).runOnce()).rejects.toMatchObject({
        name: 'StoreUnavailableError',
        detail: expect.stringMatching(/lock timeout/),
      });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await migration.query('ROLLBACK');
      migration.release();
    }
    expect(await purgeLockHeld(db.pool)).toBe(false);
    expect(await count(db.pool, 'user_sessions')).toBe(10); // the failed batch left nothing half done
    expect(await count(db.pool, 'session_audit_log')).toBe(0);
    expect(await purger(db.pool).runOnce()).toMatchObject({ sessionsDeleted: 10 });
  });

  it('a lease held by a purger that died turns the others away until it expires, then the next run goes ahead', async () => {
    await seedMany(db.pool, 10, 'idle', -60, 3_600);
    // A purger took the lease and died: nothing gives it back, as nothing tells a pooler's server connection.
    const dead = new PurgeStore(db.pool);
    const connection = await dead.connect();
    expect(await connection.tryLock('crashed:1:run')).toBe(true);
    connection['client'].release(); // dies without release(): the lease row stays

    const started = Date.now();
    expect(await purger(db.pool).runOnce()).toMatchObject({ skipped: 'locked', sessionsDeleted: 0 });
    expect(Date.now() - started).toBeLessThan(1_000);
    const { rows } = await db.pool.query(
      `SELECT holder, round(extract(epoch FROM expires_at - now()) * 1000) AS left_ms FROM session_purge_lease`,
    );
    expect(rows).toEqual([{ holder: 'crashed:1:run', left_ms: expect.any(String) }]);
    expect(Number(rows[0].left_ms)).toBeGreaterThan(PURGE_LEASE_MS - 60_000);
    expect(Number(rows[0].left_ms)).toBeLessThanOrEqual(PURGE_LEASE_MS);

    // Its lease expires (the clock moved in SQL): the next run takes over.
    await db.pool.query(`UPDATE session_purge_lease SET expires_at = now() - interval '1 second'`);
    expect(await purger(db.pool).runOnce()).toMatchObject({ sessionsDeleted: 10 });
    expect(await purgeLockHeld(db.pool)).toBe(false);
  });

  it('a run whose lease passed to another instance stops before its next batch, writing nothing more', async () => {
    await seedMany(db.pool, 300, 'idle', -60, 3_600);
    const connection = await new PurgeStore(db.pool).connect();
    const other = await new PurgeStore(db.pool).connect();
    try {
      expect(await connection.tryLock('slow:1:run')).toBe(true);
      expect((await connection.purgeExpiredSessions('idle', 100, false)).deleted).toBe(100);
      // It paused past its lease, and another instance took the lease.
      await db.pool.query(`UPDATE session_purge_lease SET expires_at = now() - interval '1 second'`);
      expect(await other.tryLock('other:2:run')).toBe(true);
      await expect(connection.purgeExpiredSessions('idle', 100, false)).rejects.toMatchObject({
        name: 'PurgeLeaseLostError',
      });
      await connection.release();
      // Its release() leaves the other holder's lease alone.
      expect((await db.pool.query(`SELECT holder FROM session_purge_lease`)).rows).toEqual([{ holder: 'other:2:run' }]);
    } finally {
      await connection.release();
      await other.release();
    }
    expect(await count(db.pool, 'user_sessions')).toBe(200);
  });

  it("never waits on the lease row while the holder's batch transaction keeps it locked", async () => {
    const holder = await new PurgeStore(db.pool).connect();
    const mid = await db.pool.connect();
    const other = await new PurgeStore(db.pool).connect();
    try {
      expect(await holder.tryLock('busy:1:run')).toBe(true);
      // What beginStep does at the start of each batch: the row stays locked until the batch commits.
      await mid.query('BEGIN');
      await mid.query(
        `UPDATE session_purge_lease SET expires_at = now() + interval '2 minutes' WHERE holder = 'busy:1:run'`,
      );
      const answer = await Promise.race([other.tryLock('other:2:run'), sleep(10_000).then(() => 'still waiting')]);
      expect(answer).toBe(false);
    } finally {
      await mid.query('ROLLBACK');
      mid.release();
      await other.release();
      await holder.release();
    }
  });

  it('sends no session-level setting: limits are SET LOCAL, and a pooled connection keeps none after a run', async () => {
    await seedMany(db.pool, 10, 'idle', -60, 3_600);
    const pool = db.newPool({ max: 1 });
    try {
      expect(await purger(pool).runOnce()).toMatchObject({ sessionsDeleted: 10 });
      const { rows } = await pool.query(
        `SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('lock_timeout') AS lock_timeout`,
      );
      expect(rows).toEqual([{ statement_timeout: '0', lock_timeout: '0' }]);
    } finally {
      await pool.end();
    }
  });

  it('shutdown between batches stops the run at once and leaves every deleted session with its audit row', async () => {
    await seedMany(db.pool, 1_000, 'idle', -60, 3_600);
    // After batch 1 the run pauses 999 times as long as the batch took: seconds.
    const purge = purger(db.pool, { batchSize: 100, dutyCycle: 0.001 });
    const run = purge.runOnce();
    await eventually(async () => (await count(db.pool, `session_audit_log WHERE event = 'purged'`)) > 0, 5_000, 10);

    const stopping = Date.now();
    await purge.onApplicationShutdown(); // waits for the run, which is pausing after batch 1
    expect(Date.now() - stopping).toBeLessThan(1_000); // the pause was cut short
    const result = await run;

    expect(result).toMatchObject({ interrupted: true, sessionsDeleted: 100, batches: 1 });
    expect(await count(db.pool, 'user_sessions')).toBe(900);
    expect(await count(db.pool, `session_audit_log WHERE event = 'purged'`)).toBe(100);
    // Consistent: no audit row for a session still there, every missing session has one.
    expect(await count(db.pool, `session_audit_log a JOIN user_sessions s ON s.id = a.session_id`)).toBe(0);
    expect(await purge.runOnce()).toMatchObject({ skipped: 'shutdown' });
    expect(await purgeLockHeld(db.pool)).toBe(false);

    // Another instance picks up the rest.
    expect(await purger(db.pool).runOnce()).toMatchObject({ sessionsDeleted: 900 });
  });

  it('a second runOnce while one is running in the same instance is skipped, not run twice', async () => {
    await seedMany(db.pool, 300, 'idle', -60, 3_600);
    const purge = purger(db.pool, { batchSize: 100, dutyCycle: 0.2 });
    const first = purge.runOnce(); // running from here on, before its first statement returns
    expect(await purge.runOnce()).toMatchObject({ skipped: 'running', sessionsDeleted: 0 });
    expect(await first).toMatchObject({ sessionsDeleted: 300 });
  });
});
