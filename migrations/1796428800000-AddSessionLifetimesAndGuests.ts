import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Lifetimes per session and guest sessions (issue 25):
 * - `lifetime`: the profile the session was created with ('default', 'remember', 'guest', ...),
 *   so a touch extends it by that profile's idle timeout; existing rows are 'default'.
 * - `user_id` may be NULL: a guest session, which has no user. Every per-user statement
 *   (`user_id = $1`) then never sees a guest. A guest row always has the 'guest' profile and a
 *   user row never does (CHECK), so neither can pass for the other.
 * No index is added: a guest is found by its token like any session, and `user_sessions_user_id_idx`
 * serves the per-user queries unchanged (NULL user ids sit at its end, never scanned).
 */
export class AddSessionLifetimesAndGuests1796428800000 implements MigrationInterface {
  name = 'AddSessionLifetimesAndGuests1796428800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // A constant default: Postgres 11+ adds the column without rewriting the table.
    await queryRunner.query(`ALTER TABLE user_sessions ADD COLUMN lifetime text NOT NULL DEFAULT 'default'`);
    await queryRunner.query(`ALTER TABLE user_sessions ALTER COLUMN user_id DROP NOT NULL`);
    // NOT VALID + VALIDATE: the check does not block writes while the existing rows are scanned.
    await queryRunner.query(`
      ALTER TABLE user_sessions ADD CONSTRAINT user_sessions_guest_lifetime_check
        CHECK ((user_id IS NULL) = (lifetime = 'guest') AND length(lifetime) BETWEEN 1 AND 32) NOT VALID`);
    await queryRunner.query(`ALTER TABLE user_sessions VALIDATE CONSTRAINT user_sessions_guest_lifetime_check`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // Guest sessions cannot exist without the column that marks them: they end here.
    await queryRunner.query(`DELETE FROM user_sessions WHERE user_id IS NULL`);
    await queryRunner.query(`ALTER TABLE user_sessions DROP CONSTRAINT user_sessions_guest_lifetime_check`);
    await queryRunner.query(`ALTER TABLE user_sessions ALTER COLUMN user_id SET NOT NULL`);
    await queryRunner.query(`ALTER TABLE user_sessions DROP COLUMN lifetime`);
  }
}
