// Personal data retention: time and WAL of one purge run that clears the IP addresses and user
// agents of ELIGIBLE audit rows older than privacy.personalDataRetention, next to the plain purge
// deleting as many expired sessions (each with its `purged` audit row), and the cost of a run
// with nothing to clear. Both at dutyCycle 1 (no pauses: the work itself), batches of 5,000.
//
//   npm run build && node bench/privacy-retention.mjs          (200,000 eligible + 200,000 younger rows)
//   ELIGIBLE=20000 node bench/privacy-retention.mjs            (smaller, for a quick look)
//
// Uses DATABASE_URL's server when set (in a fresh database it creates and drops), else an
// embedded PostgreSQL. Prints the figures as JSON on stdout.
import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startEmbeddedPostgres } from '../dist/src/demo/embedded-postgres.js';
import { runMigrations } from '../dist/src/demo/migrate.js';
import { loadSessionLib } from './session-lib.mjs';

const { PurgeStore, SessionPurgeService, resolveSessionOptions } = await loadSessionLib(
  new URL('../dist', import.meta.url).pathname,
);
const { RETENTION_SQL } = await import('../dist/src/session/privacy/retention.sql.js');

const ELIGIBLE = Number(process.env.ELIGIBLE ?? 200_000);
const YOUNG = Number(process.env.YOUNG ?? ELIGIBLE);
const log = (line) => process.stderr.write(`[privacy-bench] ${line}\n`);

Logger.overrideLogger(['warn', 'error']);
const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres();
const serverUrl = process.env.DATABASE_URL ?? embedded.url;
const name = `nps_privacy_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: serverUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(serverUrl);
url.pathname = `/${name}`;
const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
pool.on('error', () => undefined);

/** `n` audit rows aged between `fromDays` and `toDays`, with what a login, a client change and a flood row store. */
const seedAudit = (n, fromDays, toDays) =>
  pool.query(
    `INSERT INTO session_audit_log (occurred_at, event, session_id, user_id, ip, user_agent, details)
     SELECT now() - ($2::float8 + ($3::float8 - $2::float8) * g::float8 / $1::int) * interval '1 day', e, gen_random_uuid(), 'user-' || (g % 5000),
            '203.0.113.' || (g % 250), 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 #' || g,
            CASE e WHEN 'ip_changed' THEN jsonb_build_object('from', '198.51.100.' || (g % 250), 'to', '203.0.113.' || (g % 250))
                   WHEN 'invalid_token' THEN jsonb_build_object('count', 3, 'user_agents', jsonb_build_array(jsonb_build_object('value', 'curl/8.0', 'count', 3)))
                   ELSE jsonb_build_object('reason', 'interval') END
     FROM generate_series(1, $1::int) g, LATERAL (SELECT (ARRAY['created', 'rotated', 'ip_changed', 'invalid_token'])[1 + g % 4] AS e) x`,
    [n, fromDays, toDays],
  );

const walNow = async () => (await pool.query('SELECT pg_current_wal_lsn() AS lsn')).rows[0].lsn;
const walSince = async (lsn) =>
  Number((await pool.query('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::bigint AS b', [lsn])).rows[0].b);
const mb = (bytes) => Math.round(bytes / 10_485.76) / 100;

/** EXPLAIN of one batch (30 days, 5,000 rows), rolled back. */
async function explained(how) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    return await client.query(`EXPLAIN (${how}) ${RETENTION_SQL.clearPersonalData.text}`, [30 * 86_400_000, 5_000]);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

/** One purge run (dutyCycle 1, privacy as given) after a checkpoint, so each pays its own full-page writes. */
async function measuredRun(privacy) {
  await pool.query('VACUUM ANALYZE');
  await pool.query('CHECKPOINT');
  const service = new SessionPurgeService(
    new PurgeStore(pool),
    resolveSessionOptions({ purge: { enabled: false, dutyCycle: 1, auditRetention: '90d' }, privacy }),
  );
  const lsn = await walNow();
  const started = performance.now();
  const result = await service.runOnce();
  return { ms: Math.round(performance.now() - started), walMB: mb(await walSince(lsn)), result };
}

try {
  await runMigrations(url.toString());
  const version = (await pool.query('SHOW server_version')).rows[0].server_version;
  log(`PostgreSQL ${version}; ${ELIGIBLE} eligible + ${YOUNG} younger audit rows`);
  await seedAudit(ELIGIBLE, 31, 60);
  await seedAudit(YOUNG, 0.01, 29);
  // The weekly partitions first (rows move out of DEFAULT), with nothing cleared.
  await measuredRun({ personalDataRetention: false });
  await pool.query('VACUUM ANALYZE');
  const eligiblePlan = await explained('ANALYZE, BUFFERS, COSTS OFF');

  const retention = await measuredRun({});
  log(`retention: ${JSON.stringify(retention)}`);
  await pool.query('VACUUM ANALYZE session_audit_log');
  const idle = await measuredRun({});
  const [
    {
      'QUERY PLAN': [plan],
    },
  ] = (await explained('ANALYZE, BUFFERS, FORMAT JSON')).rows;
  const empty = {
    executionMs: plan['Execution Time'],
    pages: plan.Plan['Shared Hit Blocks'] + plan.Plan['Shared Read Blocks'],
  };

  // The plain purge: as many expired sessions, each deleted with its `purged` audit row.
  await pool.query(
    `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at, ip, user_agent)
     SELECT sha256(('s' || g)::bytea), 'user-' || g, now() - interval '1 minute', now() + interval '1 hour',
            '203.0.113.' || (g % 250), 'Mozilla/5.0 #' || g
     FROM generate_series(1, $1::int) g`,
    [ELIGIBLE],
  );
  const purge = await measuredRun({ personalDataRetention: false });
  const size = (
    await pool.query(
      `SELECT pg_size_pretty(sum(pg_relation_size(relid))) AS s FROM pg_partition_tree('session_audit_log_personal_idx')`,
    )
  ).rows[0].s;
  process.stdout.write(
    `${JSON.stringify(
      {
        server: `PostgreSQL ${version}${embedded ? ' (embedded)' : ''}`,
        eligible: ELIGIBLE,
        younger: YOUNG,
        retentionRun: {
          ms: retention.ms,
          walMB: retention.walMB,
          cleared: retention.result.auditRowsCleared,
          batches: retention.result.batches,
        },
        nothingToClear: {
          runMs: idle.ms,
          cleared: idle.result.auditRowsCleared,
          statementMs: empty.executionMs,
          pages: empty.pages,
        },
        plainPurge: {
          ms: purge.ms,
          walMB: purge.walMB,
          sessionsDeleted: purge.result.sessionsDeleted,
          batches: purge.result.batches,
        },
        personalIndexSizeAfter: size,
        batchPlan: eligiblePlan.rows.map((r) => r['QUERY PLAN']),
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await pool.end();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
  await embedded?.stop();
}
