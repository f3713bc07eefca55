import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { AUDIT_PARTITION_LOCK_KEY, AuditPartitions } from '../../src/session/purge/audit-partitions.js';
import { PurgeStore } from '../../src/session/purge/purge.store.js';
import { SessionPurgeService } from '../../src/session/purge/session-purge.service.js';
import { resolveSessionOptions, type SessionPurgeOptions } from '../../src/session/session.options.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { captureNestLogs } from '../support/log-capture.js';

const logs = captureNestLogs();

function purger(pool: pg.Pool, purge: SessionPurgeOptions = {}): SessionPurgeService {
  return new SessionPurgeService(new PurgeStore(pool), resolveSessionOptions({ purge: { dutyCycle: 1, ...purge } }));
}

/** The audit log's partitions, oldest first, with their rows and bounds. */
async function partitions(pool: pg.Pool) {
  const { rows } = await pool.query(`
    SELECT c.relname AS name, (SELECT count(*)::int FROM session_audit_log WHERE tableoid = c.oid) AS rows
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'session_audit_log'::regclass ORDER BY c.relname`);
  return rows as { name: string; rows: number }[];
}

/** The name of the partition of the UTC week (from Monday) that holds the instant `days` days from now. */
async function weekName(pool: pg.Pool, days: number): Promise<string> {
  const { rows } = await pool.query(
    `SELECT 'session_audit_log_' || to_char(date_trunc('week', (now() + $1 * interval '1 day') AT TIME ZONE 'UTC'), 'YYYYMMDD') AS name`,
    [days],
  );
  return rows[0].name;
}

/** Drops the (empty) partitions of this week and the next, as if the purge had never made them. */
async function dropAhead(pool: pg.Pool, which: number[] = [0, 7]): Promise<void> {
  for (const d of which) await pool.query(`DROP TABLE ${await weekName(pool, d)}`);
}

describe('the audit log partitions (kept by the purge)', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  }, 60_000);
  afterAll(async () => db?.drop());
  beforeEach(async () => {
    // Back to a fresh install: this week and the next, and DEFAULT, all empty.
    await db.pool.query('TRUNCATE session_audit_log');
    for (const { name } of await partitions(db.pool))
      if (name !== 'session_audit_log_default') await db.pool.query(`DROP TABLE ${name}`);
    const connection = await db.pool.connect();
    try {
      await new AuditPartitions(connection).createAhead(1, null);
    } finally {
      connection.release();
    }
    logs.clear();
  });

  it('a fresh install has a partition for this week and the next, and the DEFAULT one; rows land in their week', async () => {
    const names = (await partitions(db.pool)).map((p) => p.name);
    const weeks = [await weekName(db.pool, 0), await weekName(db.pool, 7)];
    expect(names).toEqual([...weeks, 'session_audit_log_default']);
    const { rows } = await db.pool.query(
      `INSERT INTO session_audit_log (event) VALUES ('created') RETURNING tableoid::regclass::text AS partition`,
    );
    expect(rows[0].partition).toBe(weeks[0]);
  });

  it('creates the partitions that are missing each run, and nothing when none are (idempotent)', async () => {
    await dropAhead(db.pool, [7]); // as if a week had passed since the last run
    const first = await purger(db.pool).runOnce();
    expect(first).toMatchObject({ auditPartitionsCreated: 1, auditPartitionsDropped: 0 });
    expect(first.auditRowsMoved).toBeUndefined();
    expect(await purger(db.pool).runOnce()).toMatchObject({ auditPartitionsCreated: 0, auditPartitionsDropped: 0 });
    expect((await partitions(db.pool)).map((p) => p.name)).toContain(await weekName(db.pool, 7));
  });

  it('when the purge was late, rows wait in DEFAULT; the next run makes their weeks and moves them, ids unchanged', async () => {
    await dropAhead(db.pool);
    const { rows: written } = await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at)
       SELECT 'rotated', now() - g * interval '3 days' FROM generate_series(0, 4) g, generate_series(1, 10)
       RETURNING id::text, tableoid::regclass::text AS partition`,
    );
    const weeks = new Set([7, 0, -3, -6, -9, -12].map((d) => weekName(db.pool, d)));
    const expected = new Set(await Promise.all(weeks));
    expect(new Set(written.map((r) => r.partition))).toEqual(new Set(['session_audit_log_default']));

    const result = await purger(db.pool).runOnce();
    // this week and the next, and each past week that had rows in DEFAULT
    expect(result).toMatchObject({ auditPartitionsCreated: expected.size, auditRowsMoved: 50, auditRowsDeleted: 0 });
    const after = await partitions(db.pool);
    expect(after.find((p) => p.name === 'session_audit_log_default')!.rows).toBe(0);
    expect(new Set(after.map((p) => p.name))).toEqual(new Set([...expected, 'session_audit_log_default']));
    const { rows: ids } = await db.pool.query(`SELECT id::text FROM session_audit_log ORDER BY session_audit_log.id`);
    expect(ids.map((r) => r.id)).toEqual(written.map((r) => r.id).sort((a, b) => Number(a) - Number(b)));
    const { rows: where } = await db.pool.query(
      `SELECT DISTINCT tableoid::regclass::text AS partition,
              to_char(date_trunc('week', occurred_at AT TIME ZONE 'UTC'), 'YYYYMMDD') AS week
       FROM session_audit_log`,
    );
    for (const { partition, week } of where) expect(partition).toBe(`session_audit_log_${week}`);
  });

  it('drops each partition whose whole week is past the retention, counting its rows; keeps the one on the edge', async () => {
    // 40 days of rows, 5 per day, moved into their weekly partitions by a run that keeps everything.
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at)
       SELECT 'created', now() - g * interval '1 day' FROM generate_series(1, 40) g, generate_series(1, 5)`,
    );
    await purger(db.pool, { auditRetention: false }).runOnce();
    // What a 14-day retention drops: the partitions that end before now - 14 days, and their rows.
    const { rows: due } = await db.pool.query(`
      SELECT count(DISTINCT tableoid)::int AS partitions, count(*)::int AS rows FROM session_audit_log
      WHERE date_trunc('week', occurred_at AT TIME ZONE 'UTC') + interval '7 days' <= (now() - interval '14 days') AT TIME ZONE 'UTC'`);
    expect(due[0].partitions).toBeGreaterThanOrEqual(3);

    const result = await purger(db.pool, { auditRetention: '14d' }).runOnce();
    expect(result).toMatchObject({
      auditPartitionsDropped: due[0].partitions,
      auditRowsDeleted: due[0].rows,
      auditPartitionsCreated: 0,
    });
    // The week that holds the edge stays, with its rows older than the retention, until it ends.
    const names = (await partitions(db.pool)).map((p) => p.name);
    expect(names).toContain(await weekName(db.pool, -14));
    expect(names).not.toContain(await weekName(db.pool, -21));
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n, bool_and(occurred_at > now() - interval '21 days') AS within FROM session_audit_log`,
    );
    expect(rows[0]).toEqual({ n: 200 - due[0].rows, within: true });
    expect(await purger(db.pool, { auditRetention: '14d' }).runOnce()).toMatchObject({ auditPartitionsDropped: 0 });
  });

  it('rows in DEFAULT older than the retention get no partition: they are deleted in batches', async () => {
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at) SELECT 'created', now() - interval '3 years' - g * interval '1 minute' FROM generate_series(1, 250) g`,
    );
    const result = await purger(db.pool, { batchSize: 100 }).runOnce();
    expect(result).toMatchObject({ auditPartitionsCreated: 0, auditRowsDeleted: 250, batches: 3 });
    expect((await partitions(db.pool)).find((p) => p.name === 'session_audit_log_default')!.rows).toBe(0);
  });

  it('a busy audit table (a long admin query) makes the drop give up after its lock timeout: a warning, inserts never wait long, the next run drops it', async () => {
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at) VALUES ('created', now() - interval '20 days')`,
    );
    await purger(db.pool, { auditRetention: false }).runOnce(); // its week's partition, which ends before now - 7 days
    const admin = await db.pool.connect();
    try {
      await admin.query('BEGIN');
      await admin.query('SELECT count(*) FROM session_audit_log'); // ACCESS SHARE on every partition until COMMIT
      await db.pool.query(`INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
        VALUES (sha256('x'), 'u', now() - interval '1 minute', now() + interval '1 hour')`);

      const result = await purger(db.pool, { auditRetention: '7d' }).runOnce();
      expect(result).toMatchObject({ sessionsDeleted: 1, auditPartitionsDropped: 0, auditRowsDeleted: 0 });
      expect(logs.from('SessionPurgeService', 'warn').map((l) => l.message)).toEqual([
        expect.stringMatching(/^audit partitions \(drop\) failed, the next run tries again: .*lock timeout/),
      ]);
      // The drop's lock request is gone: an insert goes straight through.
      await db.pool.query(`INSERT INTO session_audit_log (event) VALUES ('created')`);
    } finally {
      await admin.query('COMMIT');
      admin.release();
    }
    expect(await purger(db.pool, { auditRetention: '7d' }).runOnce()).toMatchObject({
      auditPartitionsDropped: 1,
      auditRowsDeleted: 1,
    });
  });

  it('two maintainers at once on two connections: each week is made once, neither fails', async () => {
    await dropAhead(db.pool);
    const [a, b] = [await db.pool.connect(), await db.pool.connect()];
    try {
      const results = await Promise.all([
        new AuditPartitions(a).createAhead(1, null),
        new AuditPartitions(b).createAhead(1, null),
      ]);
      expect(results[0].created + results[1].created).toBe(2);
    } finally {
      a.release();
      b.release();
    }
    expect((await partitions(db.pool)).length).toBe(3);
  });

  it('run by a role that does not own the audit log: a warning naming the fix, sessions still purged, inserts still land (DEFAULT)', async () => {
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at) VALUES ('created', now() - interval '20 days')`,
    );
    await purger(db.pool, { auditRetention: false }).runOnce(); // its week's partition, made by the owner
    await dropAhead(db.pool, [7]);
    const role = `nps_app_${randomBytes(4).toString('hex')}`;
    // What a least-privilege app role gets: data access, no ownership.
    // A password too: the embedded server authenticates by password, the CI one trusts.
    const password = randomBytes(12).toString('hex');
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}';
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
      GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
    // Straight to the server, also in the pooler pass: PgBouncer knows only its own users.
    const url = new URL(process.env.DATABASE_URL ?? db.url);
    url.pathname = `/${db.name}`;
    url.username = role;
    url.password = password;
    const asApp = new pg.Pool({ connectionString: url.toString(), max: 2 });
    try {
      await asApp.query(`INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
        VALUES (sha256('y'), 'u', now() - interval '1 minute', now() + interval '1 hour')`);
      const result = await purger(asApp, { auditRetention: '7d' }).runOnce();
      expect(result).toMatchObject({ sessionsDeleted: 1, auditPartitionsCreated: 0, auditPartitionsDropped: 0 });
      const warnings = logs.from('SessionPurgeService', 'warn').map((l) => l.message);
      expect(warnings).toEqual([
        expect.stringMatching(
          /^audit partitions \(create\) failed, .*\(the role that runs the purge must own session_audit_log/,
        ),
        expect.stringMatching(
          /^audit partitions \(drop\) failed, .*must be owner.*\(the role that runs the purge must own session_audit_log/,
        ),
      ]);
      const { rows } = await asApp.query(
        `INSERT INTO session_audit_log (event, occurred_at) VALUES ('created', now() + interval '8 days')
         RETURNING tableoid::regclass::text AS partition`,
      );
      expect(rows[0].partition).toBe('session_audit_log_default');
    } finally {
      await asApp.end();
      await db.pool.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it('leaves nothing on the connection: no advisory lock, no changed setting (safe behind a transaction pooler)', async () => {
    await dropAhead(db.pool, [7]);
    const connection = await db.pool.connect();
    try {
      const settings = async () =>
        (
          await connection.query(
            `SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s`,
          )
        ).rows[0];
      const before = await settings();
      expect(await new AuditPartitions(connection).createAhead(1, null)).toEqual({ created: 1, rowsMoved: 0 });
      expect(await new AuditPartitions(connection).dropExpired(86_400_000)).toEqual({ dropped: 0, rowsDropped: 0 });
      expect(await settings()).toEqual(before);
      const { rows } = await connection.query(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND pid = pg_backend_pid()`,
        [AUDIT_PARTITION_LOCK_KEY],
      );
      expect(rows[0].n).toBe(0);
      expect((await connection.query(`SELECT now() = statement_timestamp() AS idle`)).rows[0].idle).toBe(true); // no open transaction
    } finally {
      connection.release();
    }
  });
});
