import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * session_retired_tokens: the SHA-256 of every token a session has rotated out (never a token),
 * so a copy presented after its grace window is recognised as theft however many rotations
 * ago it was retired. Keyed by token_hash for the one extra read an unrecognised token costs;
 * (session_id, token_generation) serves the per-session cap (the newest 64 are kept, see
 * RETIRED_TOKENS_KEPT) and the cascade when the purge or a logout deletes the session.
 *
 * user_sessions.token_generation counts the session's tokens: 0 for the one issued at login,
 * +1 per rotation, so a reuse alert can say how far behind the presented token was. Adding it
 * rewrites no row (a constant default, no CHECK to validate), and nothing is backfilled, so the
 * migration holds its lock on user_sessions for an instant whatever the table's size. Sessions
 * live at the upgrade count from 0; their previous token is still found by the hot path (a
 * reuse alert for it then names no generation), older tokens of theirs were never kept.
 */
export class CreateSessionRetiredTokens1796342400000 implements MigrationInterface {
  name = 'CreateSessionRetiredTokens1796342400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE user_sessions ADD COLUMN token_generation integer NOT NULL DEFAULT 0`);
    await queryRunner.query(`
      CREATE TABLE session_retired_tokens (
        token_hash       bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
        session_id       uuid        NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
        token_generation integer     NOT NULL CHECK (token_generation >= 0),
        retired_at       timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE INDEX session_retired_tokens_session_idx ON session_retired_tokens (session_id, token_generation)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE session_retired_tokens`);
    await queryRunner.query(`ALTER TABLE user_sessions DROP COLUMN token_generation`);
  }
}
