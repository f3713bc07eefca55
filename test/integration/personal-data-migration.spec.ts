import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { AddAuditPersonalDataIndex1796688000001, sessionMigrations } from '../../migrations/index.js';
import { createTestDatabase, undoMigrationsFrom, type TestDatabase } from '../support/database.js';

describe('migration 1796688000001 (personal data index)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  /** The partial index's copies, one per partition of the audit log, with their predicates. */
  const copies = async () =>
    (
      await db.pool.query(
        `SELECT c.relname AS partition, pg_get_expr(i.indpred, i.indrelid) AS predicate
         FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
         WHERE x.oid IN (SELECT relid FROM pg_partition_tree(to_regclass('session_audit_log_personal_idx')) WHERE isleaf)
         ORDER BY 1`,
      )
    ).rows;

  it('down drops the index from every partition; up builds it again on every partition', async () => {
    await db.pool.query(
      `INSERT INTO session_audit_log (event, ip, user_agent) VALUES ('created', '192.0.2.1', 'Agent/1')`,
    );
    const before = await copies();
    const partitions = (
      await db.pool.query(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'session_audit_log'::regclass`)
    ).rows[0].n;
    expect(before).toHaveLength(partitions);
    for (const copy of before) expect(copy.predicate).toMatch(/ip IS NOT NULL.*user_agent IS NOT NULL.*\?\|/);

    const dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: sessionMigrations });
    await dataSource.initialize();
    try {
      await undoMigrationsFrom(dataSource, AddAuditPersonalDataIndex1796688000001);
      expect(await copies()).toEqual([]);
      expect(
        (await db.pool.query(`SELECT to_regclass('session_audit_log_personal_idx') AS idx`)).rows[0].idx,
      ).toBeNull();
      await dataSource.runMigrations();
      expect(await copies()).toEqual(before);
    } finally {
      await dataSource.destroy();
    }
  });
});
