import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Impersonation (`SessionService.impersonate`): a session that acts as `user_id` records the
 * admin behind it (`impersonator_id`) and the admin's own session (`impersonator_session_id`),
 * to return to and to end it with. No foreign key (as between the other tables): the statements
 * that end an admin session end its impersonations in the same statement, and the partial index
 * makes that lookup free for the sessions that are no one's impersonator (nearly all).
 */
export class AddSessionImpersonation1796601600000 implements MigrationInterface {
  name = 'AddSessionImpersonation1796601600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE user_sessions
        ADD COLUMN impersonator_id text CHECK (length(impersonator_id) BETWEEN 1 AND 255),
        ADD COLUMN impersonator_session_id uuid,
        ADD CONSTRAINT user_sessions_impersonation_chk
          CHECK ((impersonator_id IS NULL) = (impersonator_session_id IS NULL))`);
    await queryRunner.query(`
      CREATE INDEX user_sessions_impersonator_session_idx ON user_sessions (impersonator_session_id)
      WHERE impersonator_session_id IS NOT NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // Without the columns an impersonation session would pass for the user's own: end them first.
    await queryRunner.query(`DELETE FROM user_sessions WHERE impersonator_id IS NOT NULL`);
    await queryRunner.query(`DROP INDEX user_sessions_impersonator_session_idx`);
    await queryRunner.query(`
      ALTER TABLE user_sessions DROP CONSTRAINT user_sessions_impersonation_chk,
        DROP COLUMN impersonator_session_id, DROP COLUMN impersonator_id`);
  }
}
