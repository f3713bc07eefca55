import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * session_purge_lease: the purge's one-at-a-time lock as a row with an expiry (as pg-boss
 * does), instead of a session-level advisory lock, which a transaction pooler (PgBouncer
 * pool_mode=transaction) leaves held by whichever server connection ran it. The instance that
 * runs a purge holds the row (`holder`) and renews `expires_at` in each batch's transaction;
 * it deletes the row when the run ends, and a holder that died loses it when it expires.
 */
export class CreateSessionPurgeLease1796212800000 implements MigrationInterface {
  name = 'CreateSessionPurgeLease1796212800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE session_purge_lease (
        name        text        PRIMARY KEY,
        holder      text        NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now(),
        expires_at  timestamptz NOT NULL
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE session_purge_lease`);
  }
}
