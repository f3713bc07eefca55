import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * session_audit_log becomes a table partitioned by week on occurred_at (UTC weeks from Monday),
 * so the purge's retention drops a whole week's partition instead of deleting rows one by one.
 * The primary key becomes (id, occurred_at): Postgres requires the partition key in every
 * unique constraint; ids stay unique (one identity sequence for all partitions). A DEFAULT
 * partition takes any row no weekly partition covers, so an insert never fails when the purge
 * (which keeps next week's partition ready) has not run; the purge moves such rows into weekly
 * partitions later.
 *
 * The conversion copies every row, under an exclusive lock on the audit table (logins, rotations
 * and logouts wait for it); docs/storage.md has the measured cost and how to shrink the table first.
 * Ids, times and every column are kept, and the identity continues where the old one stopped.
 */
export class PartitionSessionAuditLog1796256000000 implements MigrationInterface {
  name = 'PartitionSessionAuditLog1796256000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`LOCK TABLE session_audit_log IN ACCESS EXCLUSIVE MODE`);
    const identity = await identitySequence(queryRunner, 'session_audit_log');
    await queryRunner.query(`ALTER TABLE session_audit_log RENAME TO session_audit_log_unpartitioned`);
    await queryRunner.query(
      `ALTER TABLE session_audit_log_unpartitioned RENAME CONSTRAINT session_audit_log_pkey TO session_audit_log_unpartitioned_pkey`,
    );
    await dropAuditIndexes(queryRunner); // their names belong to the new table's indexes

    await queryRunner.query(`
      CREATE TABLE session_audit_log (
        id          bigint      GENERATED ALWAYS AS IDENTITY,
        occurred_at timestamptz NOT NULL DEFAULT now(),
        event       text        NOT NULL,
        session_id  uuid,
        user_id     text,
        actor_id    text,
        ip          text,
        user_agent  text,
        details     jsonb       NOT NULL DEFAULT '{}'::jsonb
      ) PARTITION BY RANGE (occurred_at)`);
    await queryRunner.query(`CREATE TABLE session_audit_log_default PARTITION OF session_audit_log DEFAULT`);
    // One partition per UTC week (from Monday) from the oldest row's through next week (what the purge keeps).
    await queryRunner.query(`
      DO $$
      DECLARE week date;
      BEGIN
        FOR week IN
          SELECT w::date FROM generate_series(
            date_trunc('week', LEAST((SELECT min(occurred_at) FROM session_audit_log_unpartitioned), now()) AT TIME ZONE 'UTC'),
            date_trunc('week', now() AT TIME ZONE 'UTC') + interval '7 days',
            interval '7 days') AS w
        LOOP
          EXECUTE format('CREATE TABLE %I PARTITION OF session_audit_log FOR VALUES FROM (%L) TO (%L)',
                         'session_audit_log_' || to_char(week, 'YYYYMMDD'),
                         to_char(week, 'YYYY-MM-DD') || ' 00:00:00+00',
                         to_char(week + 7, 'YYYY-MM-DD') || ' 00:00:00+00');
        END LOOP;
      END $$`);
    await queryRunner.query(`
      INSERT INTO session_audit_log OVERRIDING SYSTEM VALUE
      SELECT id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
      FROM session_audit_log_unpartitioned`);
    await continueIdentity(queryRunner, identity, 'session_audit_log');
    await queryRunner.query(`DROP TABLE session_audit_log_unpartitioned`);

    // Indexes on the parent are created on every partition, now and when one is attached.
    await queryRunner.query(`ALTER TABLE session_audit_log ADD PRIMARY KEY (id, occurred_at)`);
    await createAuditIndexes(queryRunner);
  }

  /** Back to one plain table with every row (ids and identity kept), as the first migration made it. */
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`LOCK TABLE session_audit_log IN ACCESS EXCLUSIVE MODE`);
    const identity = await identitySequence(queryRunner, 'session_audit_log');
    await queryRunner.query(`ALTER TABLE session_audit_log RENAME TO session_audit_log_partitioned`);
    await queryRunner.query(
      `ALTER TABLE session_audit_log_partitioned RENAME CONSTRAINT session_audit_log_pkey TO session_audit_log_partitioned_pkey`,
    );
    await dropAuditIndexes(queryRunner);
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
    await queryRunner.query(`
      INSERT INTO session_audit_log OVERRIDING SYSTEM VALUE
      SELECT id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details
      FROM session_audit_log_partitioned`);
    await continueIdentity(queryRunner, identity, 'session_audit_log');
    await queryRunner.query(`DROP TABLE session_audit_log_partitioned`);
    await createAuditIndexes(queryRunner);
  }
}

interface IdentityPosition {
  last_value: string;
  is_called: boolean;
}

/**
 * Where `table`'s identity stands; its sequence is renamed out of the way so that the new
 * table's identity gets the usual name (it is dropped with its table).
 */
async function identitySequence(queryRunner: QueryRunner, table: string): Promise<IdentityPosition> {
  const [{ name }] = await queryRunner.query(`SELECT pg_get_serial_sequence($1, 'id') AS name`, [table]);
  const [position] = await queryRunner.query(`SELECT last_value::text, is_called FROM ${name}`);
  await queryRunner.query(`ALTER SEQUENCE ${name} RENAME TO session_audit_log_old_id_seq`);
  return position;
}

/** The new identity goes on from the old one's position, so no id is ever handed out twice. */
async function continueIdentity(queryRunner: QueryRunner, position: IdentityPosition, table: string): Promise<void> {
  await queryRunner.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), $2::int8, $3)`, [
    table,
    position.last_value,
    position.is_called,
  ]);
}

// The same definitions as the first migration, on a plain or a partitioned table.
const AUDIT_INDEXES = {
  session_audit_log_time_idx: '(occurred_at DESC, id DESC)',
  session_audit_log_user_idx: '(user_id, occurred_at DESC, id DESC)',
  session_audit_log_session_idx: '(session_id, occurred_at DESC, id DESC)',
  session_audit_log_event_idx: '(event, occurred_at DESC, id DESC)',
  session_audit_log_actor_idx: '(actor_id, occurred_at DESC, id DESC) WHERE actor_id IS NOT NULL',
  session_audit_log_ip_idx: '(ip, occurred_at DESC, id DESC) WHERE ip IS NOT NULL',
};

async function dropAuditIndexes(queryRunner: QueryRunner): Promise<void> {
  for (const name of Object.keys(AUDIT_INDEXES)) await queryRunner.query(`DROP INDEX IF EXISTS ${name}`);
}

async function createAuditIndexes(queryRunner: QueryRunner): Promise<void> {
  for (const [name, definition] of Object.entries(AUDIT_INDEXES))
    await queryRunner.query(`CREATE INDEX ${name} ON session_audit_log ${definition}`);
}
