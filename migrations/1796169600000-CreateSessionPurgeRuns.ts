import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * session_purge_runs: one row per scheduled purge tick, written by the instance that claimed
 * it (`INSERT ... ON CONFLICT (tick) DO NOTHING`), so a tick runs on one instance only. The
 * claimer fills in finished_at and the counts when its run ends, and error when it failed
 * (or 'interrupted by shutdown'); a row whose finished_at stays NULL is a claimer that died
 * (or lost the database) mid-run. The tick is not run again either way: the next one catches up. The purge deletes rows
 * older than 7 days itself; `tick` is the primary key, so that delete is an index range scan.
 */
export class CreateSessionPurgeRuns1796169600000 implements MigrationInterface {
  name = 'CreateSessionPurgeRuns1796169600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE session_purge_runs (
        tick               timestamptz PRIMARY KEY,
        instance           text        NOT NULL,
        started_at         timestamptz NOT NULL DEFAULT now(),
        finished_at        timestamptz,
        sessions_deleted   integer,
        audit_rows_deleted integer,
        error              text
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE session_purge_runs`);
  }
}
