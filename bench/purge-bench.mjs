// Purge benchmark: how fast the batched purge deletes expired sessions, and how much it
// slows down concurrent session validations, next to the single unbatched DELETE that
// connect-pg-simple and Spring Session JDBC run.
//
//   npm run build && node bench/purge-bench.mjs            (1,000,000 expired + 100,000 live)
//   EXPIRED=100000 LIVE=10000 node bench/purge-bench.mjs   (smaller, for a quick look)
//
// Uses DATABASE_URL's server when set (in a fresh database it creates and drops), else an
// embedded PostgreSQL. `runPurgeBench()` returns the figures; run standalone, it prints them
// as JSON on stdout (progress goes to stderr).
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import { startEmbeddedPostgres } from '../dist/src/demo/embedded-postgres.js';
import { runMigrations } from '../dist/src/demo/migrate.js';
import { PurgeStore, SESSION_SQL, SessionPurgeService, resolveSessionOptions } from '../dist/src/session/index.js';

/** What the peers run on every node (connect-pg-simple: `expire < to_timestamp(...)`; Spring: `EXPIRY_TIME < ?`). */
export const PEER_UNBATCHED_DELETE = 'DELETE FROM user_sessions WHERE idle_expires_at < now() OR absolute_expires_at < now()';

const defaults = {
  expired: 1_000_000,
  live: 100_000,
  /** Concurrent validation loops, each at a steady rate. */
  loops: 8,
  /** Validations per second per loop (8 × 250 = 2,000/s in all). */
  ratePerLoop: 250,
  /** Length of each no-purge baseline window (one before the purge, one after). */
  baselineMs: 10_000,
  /** SessionModule `purge` options for the batched run (defaults otherwise). */
  purge: {},
  /** batched: the module's defaults; batched-unthrottled: dutyCycle 1 (no pauses); unbatched: the peers' DELETE. */
  modes: ['batched', 'batched-unthrottled', 'unbatched'],
};

export async function runPurgeBench(options = {}) {
  const o = { ...defaults, ...options };
  Logger.overrideLogger(['warn', 'error']); // the purge's one line per run would land on stdout
  const log = o.log ?? ((line) => process.stderr.write(`[purge-bench] ${line}\n`));
  const server = o.databaseUrl ?? process.env.DATABASE_URL;
  const embedded = server ? undefined : await startEmbeddedPostgres();
  const serverUrl = server ?? embedded.url;
  const name = `nps_purge_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: o.loops + 2 });
  let closing = false; // pool.end() resolves before its connections have finished closing
  pool.on('error', (error) => closing || log(`idle connection lost: ${error.message}`));
  try {
    await runMigrations(databaseUrl);
    const version = (await pool.query('SHOW server_version')).rows[0].server_version;
    log(`PostgreSQL ${version}${embedded ? ' (embedded)' : ` at ${url.host}`}; ${o.expired} expired + ${o.live} live sessions`);

    const runs = {};
    for (const mode of o.modes) {
      await seed(pool, o, log);
      const liveHashes = (await pool.query('SELECT token_hash FROM user_sessions WHERE idle_expires_at > now() AND absolute_expires_at > now()')).rows.map((r) => r.token_hash);
      const expiredIds = (await pool.query(`SELECT id FROM user_sessions WHERE idle_expires_at <= now() OR absolute_expires_at <= now() ORDER BY random() LIMIT 20000`)).rows.map((r) => r.id);

      const expiring = { ids: expiredIds, next: 0 }; // each request-side expiry picks a session not tried before
      const before = await measure(pool, liveHashes, expiring, o, () => sleep(o.baselineMs));
      log(`${mode}: validation p99 before ${before.validation.p99.toFixed(2)} ms over ${before.validation.count} lookups`);
      const loadBefore = loadavg()[0];

      let deleted = 0;
      let extra = {};
      const during = await measure(pool, liveHashes, expiring, o, async () => {
        if (mode.startsWith('batched')) {
          const purgePool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
          purgePool.on('error', (error) => log(`idle purge connection lost: ${error.message}`));
          const options = resolveSessionOptions({ purge: { enabled: false, ...o.purge, ...(mode === 'batched-unthrottled' ? { dutyCycle: 1 } : {}) } });
          const purge = new SessionPurgeService(new PurgeStore(purgePool), options);
          const result = await purge.runOnce();
          await purgePool.end();
          deleted = result.sessionsDeleted;
          extra = { batches: result.batches, batchSize: options.purge.batchSize, dutyCycle: options.purge.dutyCycle, auditRowsWritten: deleted };
        } else {
          deleted = (await pool.query(PEER_UNBATCHED_DELETE)).rowCount;
          extra = { auditRowsWritten: 0 };
        }
      });
      const loadDuring = loadavg()[0];
      const left = (await pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n;
      // The no-purge baseline is taken before and after (on the vacuumed table), so a change in
      // the machine's other load during the run weighs on both sides.
      await pool.query('VACUUM user_sessions');
      await pool.query('VACUUM session_audit_log');
      const after = await measure(pool, liveHashes, expiring, o, () => sleep(o.baselineMs));
      const baseline = { validation: stats([...before.validation.samples, ...after.validation.samples]), expire: stats([...before.expire.samples, ...after.expire.samples]) };
      runs[mode] = {
        sessionsDeleted: deleted,
        liveLeft: left,
        durationMs: Math.round(during.elapsedMs),
        rowsPerSecond: Math.round(deleted / (during.elapsedMs / 1_000)),
        ...extra,
        loadAverage1m: { before: round(loadBefore), endOfPurge: round(loadDuring) },
        validation: {
          baselineP99BeforeMs: round(before.validation.p99), baselineP99AfterMs: round(after.validation.p99),
          baselineP50Ms: round(baseline.validation.p50), baselineP99Ms: round(baseline.validation.p99),
          duringP50Ms: round(during.validation.p50), duringP99Ms: round(during.validation.p99),
          duringMaxMs: round(during.validation.max), lookups: during.validation.count,
          p99Ratio: round(during.validation.p99 / baseline.validation.p99),
        },
        expiringRequest: {
          baselineP99Ms: round(baseline.expire.p99), duringP99Ms: round(during.expire.p99),
          duringMaxMs: round(during.expire.max), requests: during.expire.count,
        },
      };
      log(`${mode}: ${JSON.stringify(runs[mode])}`);
    }
    return {
      server: `PostgreSQL ${version}${embedded ? ' (embedded)' : ''}`,
      expired: o.expired,
      live: o.live,
      load: `${o.loops} loops × ${o.ratePerLoop} validations/s (lookup by token hash, store SQL) + 1 loop × 20/s request-side expiries of expired sessions`,
      goal: 'batched.validation.p99Ratio <= 2.0',
      ...runs,
    };
  } finally {
    closing = true;
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    await embedded?.stop();
  }
}

/** Fresh tables: `expired` sessions past idle and/or absolute expiry (some revoked tombstones), `live` ones. */
async function seed(pool, o, log) {
  const started = Date.now();
  await pool.query('TRUNCATE user_sessions, session_audit_log');
  // Deterministic token hashes (sha256 of the row number); a realistic row: small data, ip, user agent.
  const insert = (from, to, idle, absolute, revoked) => pool.query(`
    INSERT INTO user_sessions (token_hash, user_id, data, created_at, last_seen_at, authenticated_at, rotated_at,
                               idle_expires_at, absolute_expires_at, revoked_at, revoke_reason, ip, user_agent)
    SELECT sha256(int8send(g)), 'user-' || (g % 50000), jsonb_build_object('role', 'user', 'cart', g % 7),
           now() - interval '13 hours', now() - interval '1 hour', now() - interval '13 hours', now() - interval '1 hour',
           ${idle}, ${absolute}, ${revoked ? `CASE WHEN g % 20 = 0 THEN now() - interval '2 hours' END` : 'NULL'},
           ${revoked ? `CASE WHEN g % 20 = 0 THEN 'user' END` : 'NULL'},
           '203.0.113.' || (g % 250), 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'
    FROM generate_series($1::bigint, $2::bigint) g`, [from, to]);
  const e = o.expired;
  const idleOnly = Math.floor(e * 0.7);
  const both = Math.floor(e * 0.2);
  // 70% idle-expired, spread over the last day; 20% past both deadlines; 10% past the absolute one only.
  await insert(1, idleOnly, `now() - (g % 86400) * interval '1 second' - interval '1 second'`, `now() + interval '1 hour'`, true);
  await insert(idleOnly + 1, idleOnly + both, `now() - interval '2 hours'`, `now() - (g % 3600) * interval '1 second' - interval '1 second'`, true);
  await insert(idleOnly + both + 1, e, `now() + interval '20 minutes'`, `now() - (g % 600) * interval '1 second' - interval '1 second'`, false);
  await insert(e + 1, e + o.live, `now() + interval '30 minutes'`, `now() + interval '11 hours'`, false);
  await pool.query('VACUUM ANALYZE user_sessions');
  await pool.query('VACUUM ANALYZE session_audit_log');
  await pool.query('CHECKPOINT'); // the seed's writes are not the purge's to pay for
  await sleep(3_000);
  log(`seeded ${e + o.live} sessions in ${((Date.now() - started) / 1_000).toFixed(1)} s`);
}

/**
 * Runs the validation loops while `work` runs. Latency is measured from each request's
 * planned start (or its real start, when a timer fired early), so a loop that falls behind
 * counts its waiting too (no coordinated omission).
 * Next to them, one loop expires expired sessions the way the request path does (DELETE with
 * its audit row): the request that waits when a purge holds the row.
 */
async function measure(pool, liveHashes, expiring, o, work) {
  let running = true;
  const validation = [];
  const expire = [];
  const intervalMs = 1_000 / o.ratePerLoop;
  const loop = async (index) => {
    let next = performance.now() + (intervalMs * index) / o.loops;
    while (running) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      const start = Math.min(next, performance.now());
      const hash = liveHashes[Math.floor(Math.random() * liveHashes.length)];
      const { rows } = await pool.query({ name: 'nps_lookup', text: SESSION_SQL.lookupByTokenHash, values: [hash] });
      if (rows.length !== 1) throw new Error('a live session was not found');
      validation.push(performance.now() - start);
      next += intervalMs;
    }
  };
  const expireLoop = async () => {
    let next = performance.now();
    while (running) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      const start = Math.min(next, performance.now());
      await pool.query(SESSION_SQL.deleteWithEvent, [expiring.ids[expiring.next++ % expiring.ids.length], 'expired_idle', null, null, null, '{}']);
      expire.push(performance.now() - start);
      next += 50;
    }
  };
  const loops = [...Array.from({ length: o.loops }, (_, i) => loop(i)), expireLoop()];
  await sleep(1_000); // warm-up, not recorded
  validation.length = 0;
  expire.length = 0;
  const started = performance.now();
  try {
    await work();
  } finally {
    running = false;
  }
  const elapsedMs = performance.now() - started;
  await Promise.all(loops);
  return { elapsedMs, validation: stats(validation), expire: stats(expire) };
}

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? NaN, samples };
}

const round = (n) => Math.round(n * 100) / 100;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const env = process.env;
  const figures = await runPurgeBench({
    expired: Number(env.EXPIRED ?? defaults.expired),
    live: Number(env.LIVE ?? defaults.live),
    modes: env.MODES ? env.MODES.split(',') : defaults.modes,
    purge: {
      ...(env.PURGE_BATCH_SIZE ? { batchSize: Number(env.PURGE_BATCH_SIZE) } : {}),
      ...(env.PURGE_DUTY_CYCLE ? { dutyCycle: Number(env.PURGE_DUTY_CYCLE) } : {}),
    },
  });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
