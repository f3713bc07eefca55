import type { Statement } from '../store/statement.js';

/**
 * The statements that keep session_audit_log's weekly partitions (see the migration
 * PartitionSessionAuditLog1796256000000): create them ahead, move rows out of the DEFAULT
 * partition, drop the weeks past retention. Partition names are identifiers, which cannot be
 * parameters: the planning statements return the DDL to run, quoted by Postgres's own format()
 * (%I, %L), and nothing else is ever run. Every one runs inside a transaction that first sets
 * its own limits (SET LOCAL) and takes a transaction-scoped advisory lock: no session state is
 * left on the connection (safe behind a transaction pooler); the lock ends with the transaction.
 */

/** session_audit_log's range partitions with their bounds (the DEFAULT partition has none and is left out). */
const PARTITIONS = `
  partitions AS (
    SELECT n.nspname AS schema, c.relname AS name, b[1]::timestamptz AS lo, b[2]::timestamptz AS hi
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \\('([^']+)'\\) TO \\('([^']+)'\\)$re$) AS b
    WHERE i.inhparent = 'session_audit_log'::regclass AND b IS NOT NULL
  )`;

export const AUDIT_PARTITION_SQL = {
  /**
   * For this transaction only: a DDL that finds the audit table busy (a long admin query holds
   * it) gives up after $1 instead of making every audit insert queue behind its lock request;
   * the next tick tries again, and partitions are made a week ahead, so nothing waits on it.
   */
  setLocalLimits: {
    name: 'setLocalLimits',
    text: `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`,
  },
  /** One maintainer at a time (instances, `runOnce()`, the CLI), for this transaction: skip rather than wait. */
  tryLock: { name: 'tryLock', text: `SELECT pg_try_advisory_xact_lock($1) AS locked` },

  /**
   * The weeks (UTC, from Monday) that need a partition and have none overlapping them: this week
   * and $1 weeks after it, and every week that has rows in the DEFAULT partition newer than the
   * retention ($2 ms, or null for none); newest first, so this week's stops filling DEFAULT
   * first. Each comes with its DDL: create a table like the parent, move that week's rows out of
   * DEFAULT into it, attach it (ATTACH needs only SHARE UPDATE EXCLUSIVE on the parent, where
   * CREATE TABLE ... PARTITION OF would block every insert while it waits for its lock).
   */
  missingWeeks: {
    name: 'missingWeeks',
    text: `
    WITH ${PARTITIONS},
    parent AS (
      SELECT format('%I.%I', n.nspname, c.relname) AS parent, n.nspname AS schema,
             p.partdefid::regclass::text AS default_partition,
             (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
              WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped) AS columns
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_partitioned_table p ON p.partrelid = c.oid
      WHERE c.oid = 'session_audit_log'::regclass
    ),
    weeks AS (
      SELECT date_trunc('week', now() AT TIME ZONE 'UTC')::date + 7 * g AS week FROM generate_series(0, $1::int) g
      UNION
      SELECT DISTINCT date_trunc('week', occurred_at AT TIME ZONE 'UTC')::date FROM session_audit_log_default
      WHERE $2::int8 IS NULL OR occurred_at >= now() - $2 * interval '1 millisecond'
    ),
    wanted AS (
      SELECT week, format('%I.%I', parent.schema, 'session_audit_log_' || to_char(week, 'YYYYMMDD')) AS partition,
             to_char(week, 'YYYY-MM-DD') || ' 00:00:00+00' AS lo, to_char(week + 7, 'YYYY-MM-DD') || ' 00:00:00+00' AS hi,
             parent.*
      FROM weeks, parent
    )
    SELECT w.partition, w.lo, w.hi,
           format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', w.default_partition) AS lock_default,
           format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', w.partition, w.parent) AS create,
           format('WITH moved AS (DELETE FROM %s WHERE occurred_at >= %L AND occurred_at < %L RETURNING %s) '
                  'INSERT INTO %s (%s) SELECT %s FROM moved', w.default_partition, w.lo, w.hi, w.columns,
                  w.partition, w.columns, w.columns) AS move,
           format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)', w.parent, w.partition, w.lo, w.hi) AS attach
    FROM wanted w
    WHERE NOT EXISTS (SELECT 1 FROM partitions p WHERE p.lo < w.hi::timestamptz AND p.hi > w.lo::timestamptz)
    ORDER BY w.week DESC`,
  },
  /** Whether a partition overlaps [$1, $2) by now (checked again under the lock: another maintainer may have made it). */
  overlaps: {
    name: 'overlaps',
    text: `WITH ${PARTITIONS} SELECT EXISTS (SELECT 1 FROM partitions WHERE lo < $2::timestamptz AND hi > $1::timestamptz) AS taken`,
  },

  /**
   * The oldest partition whose whole range is older than the retention ($1 ms), with the DDL to
   * count and drop it. A partition that straddles the edge stays until its end passes it.
   * DROP TABLE of a partition detaches it too; DETACH ... CONCURRENTLY is not an option: it
   * cannot run in a transaction block and refuses a table with a DEFAULT partition.
   */
  oldestExpired: {
    name: 'oldestExpired',
    text: `
    WITH ${PARTITIONS}
    SELECT format('%I.%I', schema, name) AS partition,
           format('SELECT count(*)::int AS rows FROM %I.%I', schema, name) AS count,
           format('DROP TABLE %I.%I', schema, name) AS drop
    FROM partitions
    WHERE hi <= now() - $1 * interval '1 millisecond'
    ORDER BY hi
    LIMIT 1`,
  },

  /**
   * Rows of the DEFAULT partition past the retention ($1 ms), $2 at a time: those no weekly
   * partition took (the purge was off, or they were older than the retention when it came back).
   */
  purgeOldDefaultRows: {
    name: 'purgeOldDefaultRows',
    text: `
    WITH gone AS (
      DELETE FROM session_audit_log_default
      WHERE id = ANY (ARRAY(
        SELECT id FROM session_audit_log_default
        WHERE occurred_at < now() - $1 * interval '1 millisecond'
        ORDER BY occurred_at, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED))
      RETURNING 1
    )
    SELECT count(*)::int AS deleted FROM gone`,
  },
} as const satisfies Record<string, Statement>;
