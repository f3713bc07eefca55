// Row sizes for the capacity model (docs/scaling.md): bytes per row of user_sessions,
// session_retired_tokens and session_audit_log (summed over its weekly partitions), heap and
// indexes, in a fresh database populated through the module's own statements with a real
// browser's user agent — `rows` logins, one rotation each (so the
// previous-token index holds what it holds in steady state), then a tenth logged out and the
// rest expired and purged (the audit rows a session's end writes). Sizes are read after
// VACUUM ANALYZE: `pg_column_size` of the tuples, `pg_relation_size`/`pg_indexes_size` of the
// tables divided by their rows (so page headers, fill and the free space one update per row
// leaves are in it).
import pg from 'pg';
import { runMigrations } from '../dist/src/demo/migrate.js';
import { loadSessionLib } from './session-lib.mjs';
import { CLIENT_CONTEXT, ourOps } from './write-path-ops.mjs';
import { createScratchDatabase } from './scratch-database.mjs';

const { PurgeStore } = await loadSessionLib(new URL('../dist', import.meta.url).pathname);
const CONCURRENCY = 8;

/** Calls `step(state)` on CONCURRENCY states until each has done its share of `n`. */
async function repeat(op, n) {
  const states = await op.prepare(CONCURRENCY);
  await Promise.all(
    states.map(async (state, k) => {
      for (let i = k; i < n; i += CONCURRENCY) await op.step(state);
    }),
  );
}

/**
 * Sizes summed over the table and, for a partitioned one (session_audit_log, weekly), its
 * partitions: the parent itself holds no pages.
 */
async function tableSizes(pool, table) {
  const { rows } = await pool.query(
    `WITH parts AS (SELECT oid AS relid FROM pg_class WHERE relkind = 'r'
       AND (oid = '${table}'::regclass OR oid IN (SELECT relid FROM pg_partition_tree('${table}'))))
     SELECT (SELECT count(*) FROM ${table})::int AS rows,
            (SELECT round(avg(pg_column_size(t.*))) FROM ${table} t)::int AS avg_tuple,
            (SELECT count(*) FROM parts)::int AS partitions,
            (SELECT sum(pg_relation_size(relid)) FROM parts) AS heap,
            (SELECT sum(pg_indexes_size(relid)) FROM parts) AS indexes,
            (SELECT sum(pg_total_relation_size(relid)) FROM parts) AS total`,
  );
  const r = rows[0];
  const per = (bytes) => Math.round(Number(bytes) / r.rows);
  return {
    table,
    rows: r.rows,
    ...(r.partitions > 1 ? { partitions: r.partitions } : {}),
    avgTupleBytes: r.avg_tuple,
    heapBytesPerRow: per(r.heap),
    indexBytesPerRow: per(r.indexes),
    totalBytesPerRow: per(r.total), // with TOAST and the free-space/visibility maps
  };
}

export async function measureRowSizes({ serverUrl, rows, SessionStore, log }) {
  const scratch = await createScratchDatabase(serverUrl, 'nps_row_sizes');
  const pool = new pg.Pool({ connectionString: scratch.url, max: CONCURRENCY + 1 });
  pool.on('error', () => undefined);
  try {
    await runMigrations(scratch.url);
    const store = new SessionStore(pool, { notify: false });
    const ops = ourOps(store, pool, { rowsPerWorker: Math.ceil(rows / CONCURRENCY), supply: 0 });
    await repeat(ops.create, rows);
    await pool.query('VACUUM ANALYZE user_sessions');
    await repeat(ops.rotate, rows);
    await pool.query('VACUUM ANALYZE user_sessions, session_retired_tokens');
    const sessions = await tableSizes(pool, 'user_sessions');
    log?.(`user_sessions: ${JSON.stringify(sessions)}`);
    // Measured before the sessions end: their retired hashes go with them (ON DELETE CASCADE).
    const retired = await tableSizes(pool, 'session_retired_tokens');
    log?.(`session_retired_tokens: ${JSON.stringify(retired)}`);

    // How sessions end: a tenth log out, the rest expire and the purge deletes them.
    const { rows: ids } = await pool.query('SELECT id FROM user_sessions ORDER BY random() LIMIT $1', [
      Math.round(rows / 10),
    ]);
    for (let k = 0; k < ids.length; k += CONCURRENCY)
      await Promise.all(
        ids.slice(k, k + CONCURRENCY).map(({ id }) => store.deleteWithEvent(id, 'logout', CLIENT_CONTEXT)),
      );
    await pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second'`);
    const connection = await new PurgeStore(pool, undefined, false).connect();
    try {
      // Every purge statement renews the lease, so a run holds it (a scratch database: nobody else does).
      if (!(await connection.tryLock())) throw new Error('row sizes: the purge lease is taken');
      while ((await connection.purgeExpiredSessions('idle', 5_000, false)).deleted > 0);
    } finally {
      await connection.release();
    }
    await pool.query('VACUUM ANALYZE session_audit_log');
    const audit = await tableSizes(pool, 'session_audit_log');
    const { rows: byEvent } = await pool.query(
      `SELECT event, count(*)::int AS n, round(avg(pg_column_size(a.*)))::int AS bytes
       FROM session_audit_log a GROUP BY event ORDER BY event`,
    );
    log?.(`session_audit_log: ${JSON.stringify(audit)} ${JSON.stringify(byEvent)}`);
    return {
      method: `${rows.toLocaleString('en')} logins through the store, one rotation each, 10% logout, 90% purged; after VACUUM ANALYZE`,
      tables: [sessions, retired, audit],
      auditTupleBytesByEvent: Object.fromEntries(byEvent.map((r) => [r.event, r.bytes])),
      auditRowsByEvent: Object.fromEntries(byEvent.map((r) => [r.event, r.n])),
    };
  } finally {
    await pool.end().catch(() => undefined);
    await scratch.drop();
  }
}
