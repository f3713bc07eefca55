import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * user_sessions: one row per session, keyed for lookups by SHA-256(token) only.
 * session_audit_log: append-only history of session events. No foreign key between the
 * two: audit rows outlive the sessions they describe, and either table can be sharded on
 * its own key (sessions by token_hash, audit by user_id).
 */
export class CreateSessionTables1763780000000 implements MigrationInterface {
  name = 'CreateSessionTables1763780000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE user_sessions (
        id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
        token_hash          bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
        previous_token_hash bytea       CHECK (octet_length(previous_token_hash) = 32),
        user_id             text        NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
        data                jsonb       NOT NULL DEFAULT '{}'::jsonb,
        created_at          timestamptz NOT NULL DEFAULT now(),
        last_seen_at        timestamptz NOT NULL DEFAULT now(),
        authenticated_at    timestamptz NOT NULL DEFAULT now(),
        idle_expires_at     timestamptz NOT NULL,
        absolute_expires_at timestamptz NOT NULL,
        rotated_at          timestamptz NOT NULL DEFAULT now(),
        revoked_at          timestamptz,
        revoke_reason       text,
        ip                  text,
        user_agent          text,
        version             integer     NOT NULL DEFAULT 1
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX user_sessions_token_hash_key ON user_sessions (token_hash)`);
    await queryRunner.query(
      `CREATE INDEX user_sessions_previous_token_hash_idx ON user_sessions (previous_token_hash) WHERE previous_token_hash IS NOT NULL`,
    );
    await queryRunner.query(`CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id, created_at)`);
    await queryRunner.query(`CREATE INDEX user_sessions_idle_expires_at_idx ON user_sessions (idle_expires_at)`);
    await queryRunner.query(
      `CREATE INDEX user_sessions_absolute_expires_at_idx ON user_sessions (absolute_expires_at)`,
    );

    await queryRunner.query(`
      CREATE TABLE session_audit_log (
        id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        occurred_at timestamptz NOT NULL DEFAULT now(),
        event       text        NOT NULL,
        session_id  uuid,
        user_id     text,
        actor_id    text,
        ip          text,
        user_agent  text,
        details     jsonb       NOT NULL DEFAULT '{}'::jsonb
      )`);
    // Admin queries page newest-first on (occurred_at, id); each filter has its own index.
    await queryRunner.query(`CREATE INDEX session_audit_log_time_idx ON session_audit_log (occurred_at DESC, id DESC)`);
    await queryRunner.query(
      `CREATE INDEX session_audit_log_user_idx ON session_audit_log (user_id, occurred_at DESC, id DESC)`,
    );
    await queryRunner.query(
      `CREATE INDEX session_audit_log_session_idx ON session_audit_log (session_id, occurred_at DESC, id DESC)`,
    );
    await queryRunner.query(
      `CREATE INDEX session_audit_log_event_idx ON session_audit_log (event, occurred_at DESC, id DESC)`,
    );
    await queryRunner.query(
      `CREATE INDEX session_audit_log_actor_idx ON session_audit_log (actor_id, occurred_at DESC, id DESC) WHERE actor_id IS NOT NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX session_audit_log_ip_idx ON session_audit_log (ip, occurred_at DESC, id DESC) WHERE ip IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE session_audit_log`);
    await queryRunner.query(`DROP TABLE user_sessions`);
  }
}
