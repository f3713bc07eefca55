import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Sessions waiting for a second factor (`create(..., { pendingSecondFactor: true })`):
 * `second_factor_pending` marks a session that only `@SecondFactorRoute()` routes accept, and
 * `second_factor_attempts` counts its verification attempts (revoked at `secondFactor.maxAttempts`).
 * Constant defaults: adding them rewrites no row, and every existing session stays a full one.
 */
export class AddSessionSecondFactor1796688000000 implements MigrationInterface {
  name = 'AddSessionSecondFactor1796688000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE user_sessions
        ADD COLUMN second_factor_pending boolean NOT NULL DEFAULT false,
        ADD COLUMN second_factor_attempts smallint NOT NULL DEFAULT 0
          CONSTRAINT user_sessions_second_factor_attempts_chk CHECK (second_factor_attempts >= 0)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // Without the column a session still waiting for its second factor would pass for a full one: end them first.
    await queryRunner.query(`DELETE FROM user_sessions WHERE second_factor_pending`);
    await queryRunner.query(`
      ALTER TABLE user_sessions DROP COLUMN second_factor_attempts, DROP COLUMN second_factor_pending`);
  }
}
