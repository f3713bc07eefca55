import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { PartitionSessionAuditLog1796256000000, sessionMigrations } from '../../migrations/index.js';
import { findMissingSchema } from '../../src/session/startup/session-schema.js';
import { createTestDatabase, undoMigrationsFrom, type TestDatabase } from '../support/database.js';

const ROWS = 100_000;

/** Every row, every column, in id order: equal digests mean no row was lost, added or changed. */
const DIGEST = `SELECT count(*)::int AS rows, max(id)::text AS max_id,
                       md5(string_agg(t::text, '|' ORDER BY id)) AS digest
                FROM (SELECT id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
                      FROM session_audit_log) t`;

describe('migration PartitionSessionAuditLog1796256000000 on a populated audit log', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    // All migrations ran: undo back to before this one, then run only up to it.
    db = await createTestDatabase();
    const all = new DataSource({ type: 'postgres', url: db.url, migrations: sessionMigrations, logging: false });
    await all.initialize();
    await undoMigrationsFrom(all, PartitionSessionAuditLog1796256000000);
    await all.destroy();
    const migrations = sessionMigrations.slice(0, sessionMigrations.indexOf(PartitionSessionAuditLog1796256000000) + 1);
    dataSource = new DataSource({ type: 'postgres', url: db.url, migrations, logging: false });
    await dataSource.initialize();
  }, 60_000);
  afterAll(async () => {
    if (dataSource?.isInitialized) await dataSource.destroy();
    await db?.drop();
  });

  const kind = async () =>
    (await db.pool.query(`SELECT relkind FROM pg_class WHERE oid = 'session_audit_log'::regclass`)).rows[0].relkind;
  const digest = async () => (await db.pool.query(DIGEST)).rows[0];

  it('keeps every row and id, partitions them by week, and the identity goes on above the old one', async () => {
    expect(await kind()).toBe('r');
    // Without it, the app refuses to start and names the migration (the start-up schema check).
    const missing = await findMissingSchema(db.pool);
    expect(missing?.relations).toContain('session_audit_log_default');
    expect(missing?.migrations[0]).toBe('PartitionSessionAuditLog1796256000000');
    // 100,000 rows over 120 days (times rise with ids), then 500 newer ids deleted, so the
    // identity stands above max(id): the new table must continue from the sequence, not max(id).
    await db.pool.query(
      `INSERT INTO session_audit_log (occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details)
       SELECT now() - interval '120 days' + g * (interval '120 days' / $1), 'rotated', md5(g::text)::uuid,
              'user-' || (g % 1000), CASE WHEN g % 10 = 0 THEN 'admin' END, '10.0.' || (g % 250) || '.1',
              'agent ' || g, jsonb_build_object('g', g)
       FROM generate_series(1, $1) g`,
      [ROWS],
    );
    await db.pool.query(`DELETE FROM session_audit_log WHERE id > $1`, [ROWS - 500]);
    const before = await digest();
    expect(before.rows).toBe(ROWS - 500);

    const started = performance.now();
    expect((await dataSource.runMigrations({ transaction: 'all' })).map((m) => m.name)).toEqual([
      'PartitionSessionAuditLog1796256000000',
    ]);
    console.log(
      `partitioning ${before.rows} audit rows over 120 days took ${Math.round(performance.now() - started)} ms`,
    );

    expect(await kind()).toBe('p');
    expect(await digest()).toEqual(before);
    const { rows: parts } = await db.pool.query(
      `SELECT c.relname AS name, (SELECT count(*)::int FROM session_audit_log WHERE tableoid = c.oid) AS rows
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'session_audit_log'::regclass ORDER BY c.relname`,
    );
    // The 18 to 19 UTC weeks (from Monday) the 120 days touch, next week's, and DEFAULT, empty.
    expect(parts.length).toBeGreaterThanOrEqual(18 + 1 + 1);
    expect(parts.length).toBeLessThanOrEqual(19 + 1 + 1);
    expect(parts.find((p) => p.name === 'session_audit_log_default')).toEqual({
      name: 'session_audit_log_default',
      rows: 0,
    });
    expect(parts.every((p) => /^session_audit_log_(\d{8}|default)$/.test(p.name))).toBe(true);

    const { rows: inserted } = await db.pool.query(
      `INSERT INTO session_audit_log (event) VALUES ('created') RETURNING id::text, tableoid::regclass::text AS partition`,
    );
    expect(BigInt(inserted[0].id)).toBe(BigInt(ROWS) + 1n); // 1..100,000 were handed out before
    expect(inserted[0].partition).toMatch(/^session_audit_log_\d{8}$/);

    const { rows: keys } = await db.pool.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint
       WHERE conrelid = 'session_audit_log'::regclass AND contype = 'p'`,
    );
    expect(keys).toEqual([{ def: 'PRIMARY KEY (id, occurred_at)' }]);
    const { rows: indexes } = await db.pool.query(
      `SELECT indexname FROM pg_indexes WHERE tablename = 'session_audit_log' ORDER BY indexname`,
    );
    expect(indexes.map((i) => i.indexname)).toEqual([
      'session_audit_log_actor_idx',
      'session_audit_log_event_idx',
      'session_audit_log_ip_idx',
      'session_audit_log_pkey',
      'session_audit_log_session_idx',
      'session_audit_log_time_idx',
      'session_audit_log_user_idx',
    ]);
    await expect(db.pool.query(`INSERT INTO session_audit_log (id, event) VALUES (1, 'created')`)).rejects.toThrow(
      /cannot insert a non-DEFAULT value into column "id"/,
    ); // still GENERATED ALWAYS
  }, 120_000);

  it('down gives back the plain table with every row and id; up again partitions it again', async () => {
    const before = await digest();
    await dataSource.undoLastMigration({ transaction: 'all' });
    expect(await kind()).toBe('r');
    expect(await digest()).toEqual(before);
    const { rows } = await db.pool.query(`INSERT INTO session_audit_log (event) VALUES ('logout') RETURNING id::text`);
    expect(BigInt(rows[0].id)).toBe(BigInt(before.max_id) + 1n);

    const withNew = await digest();
    await dataSource.runMigrations({ transaction: 'all' });
    expect(await kind()).toBe('p');
    expect(await digest()).toEqual(withNew);
    const { rows: sequences } = await db.pool.query(`SELECT pg_get_serial_sequence('session_audit_log', 'id') AS name`);
    expect(sequences).toEqual([{ name: 'public.session_audit_log_id_seq' }]);
  }, 120_000);
});
