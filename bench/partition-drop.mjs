// What audit retention costs, two ways, on two identical weekly partitions of session_audit_log
// (`--rows` each, default 200,000, rows as the write-path bench's `rotated` rows: a real
// browser's user agent, details of the same shape): deleting the week's rows in batches of
// 5,000 (the statement the DEFAULT partition's leftovers still get, purgeOldDefaultRows) and
// then VACUUM to make their space reusable, against DROP TABLE of the other partition (what the
// purge does to a week past retention). Time and WAL bytes for each. Fresh database on
// DATABASE_URL's server (default the local PostgreSQL), dropped at the end. Prints and writes
// bench/results/partition-drop.json, which bench/capacity-model.mjs reads (docs/scaling.md).
//
//   node bench/partition-drop.mjs [--rows=200000]
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import pg from 'pg';
import { runMigrations } from '../dist/src/demo/migrate.js';
import { BROWSER_UA, CLIENT_IP } from './write-path-ops.mjs';
import { createScratchDatabase } from './scratch-database.mjs';

const rows = Number(process.argv.find((a) => a.startsWith('--rows='))?.slice(7) ?? 200_000);
if (!(Number.isInteger(rows) && rows >= 1_000)) throw new Error('--rows takes an integer >= 1000');
const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const BATCH = 5_000;

/** Runs `work`, returning its milliseconds and the WAL it wrote. */
async function measured(client, work) {
  const lsn = async () => (await client.query('SELECT pg_current_wal_insert_lsn() AS l')).rows[0].l;
  const from = await lsn();
  const started = performance.now();
  await work();
  const ms = performance.now() - started;
  const { rows: r } = await client.query('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1)::int8 AS b', [from]);
  return { ms: Math.round(ms), walBytes: Number(r[0].b) };
}

const scratch = await createScratchDatabase(serverUrl, 'nps_partition_drop');
const client = new pg.Client({ connectionString: scratch.url });
try {
  await runMigrations(scratch.url);
  await client.connect();
  // Two weeks long past, each its own partition (as AuditPartitions makes them), filled alike.
  const weeks = [
    ['2020-01-06', '2020-01-13'],
    ['2020-01-13', '2020-01-20'],
  ];
  for (const [lo, hi] of weeks) {
    const part = `session_audit_log_${lo.replaceAll('-', '')}`;
    await client.query(`CREATE TABLE ${part} (LIKE session_audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
    await client.query(
      `ALTER TABLE session_audit_log ATTACH PARTITION ${part} FOR VALUES FROM ('${lo} 00:00:00+00') TO ('${hi} 00:00:00+00')`,
    );
    await client.query(
      `INSERT INTO session_audit_log (occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details)
       SELECT '${lo}'::timestamptz + g * (interval '7 days' / $1::int), 'rotated', gen_random_uuid(), 'user-' || g,
              'user-' || g, $2, $3, jsonb_build_object('reason', 'interval', 'version', 5, 'generation', 4)
       FROM generate_series(0, $1::int - 1) g`,
      [rows, CLIENT_IP, BROWSER_UA],
    );
  }
  await client.query('VACUUM ANALYZE session_audit_log');
  await client.query('CHECKPOINT');
  const { rows: size } = await client.query(`SELECT pg_total_relation_size('session_audit_log_20200106')::int8 AS b`);
  const del = await measured(client, async () => {
    let gone;
    do {
      ({ rowCount: gone } = await client.query(
        `DELETE FROM session_audit_log_20200106 WHERE id = ANY (ARRAY(
           SELECT id FROM session_audit_log_20200106 ORDER BY occurred_at, id LIMIT $1))`,
        [BATCH],
      ));
    } while (gone > 0);
  });
  const vacuum = await measured(client, () => client.query('VACUUM session_audit_log_20200106'));
  await client.query('CHECKPOINT');
  const drop = await measured(client, () => client.query('DROP TABLE session_audit_log_20200113'));
  const { rows: server } = await client.query(`SELECT current_setting('server_version') AS v`);
  const out = {
    at: new Date().toISOString(),
    server: `PostgreSQL ${server[0].v}`,
    machine: `${cpus().length} cores, load avg ${loadavg()[0].toFixed(2)}`,
    rowsPerPartition: rows,
    partitionBytes: Number(size[0].b),
    deleteInBatches: { ...del, rowsPerSecond: Math.round(rows / (del.ms / 1000)) },
    vacuumAfter: vacuum,
    dropPartition: drop,
  };
  const json = `${JSON.stringify(out, null, 2)}\n`;
  process.stdout.write(json);
  await writeFile(new URL('results/partition-drop.json', import.meta.url), json);
} finally {
  await client.end().catch(() => undefined);
  await scratch.drop();
}
