import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The purge clears IP addresses, user agents and the details that name them from audit rows
 * older than `privacy.personalDataRetention`. This partial index holds only rows that still
 * have any of them, by time: each run reads just the rows it clears, and a cleared row leaves
 * the index, so a run with nothing to do costs one empty index probe per partition instead of
 * a scan of every row between the two retentions. Its predicate is repeated word for word by
 * PRIVACY_SQL.clearPersonalData (the planner needs that to use it). Building it locks the
 * audit log against writes for the build (about a second per million rows); a partitioned
 * table cannot build an index CONCURRENTLY.
 */
export class AddAuditPersonalDataIndex1796688000001 implements MigrationInterface {
  name = 'AddAuditPersonalDataIndex1796688000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE INDEX session_audit_log_personal_idx ON session_audit_log (occurred_at)
      WHERE (ip IS NOT NULL OR user_agent IS NOT NULL OR details ?| ARRAY['from', 'to', 'user_agents'])`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX session_audit_log_personal_idx`);
  }
}
