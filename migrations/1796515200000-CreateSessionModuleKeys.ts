import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * session_module_keys: secret keys the module generates once (32 random bytes, in Node) and
 * keeps, so every instance agrees and restarts change nothing: today the audit cursors' MAC
 * key ('audit-cursor'). Instances race to create a key with INSERT ... ON CONFLICT (name) DO
 * NOTHING and then read the row that won. Deleting a row makes a new key at the next start
 * (and refuses the cursors made under the old one).
 */
export class CreateSessionModuleKeys1796515200000 implements MigrationInterface {
  name = 'CreateSessionModuleKeys1796515200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE session_module_keys (
        name       text        PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
        key        bytea       NOT NULL CHECK (octet_length(key) >= 32),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE session_module_keys`);
  }
}
