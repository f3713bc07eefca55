// Purge benchmark: how fast the batched purge deletes expired sessions, and how much it
// slows down concurrent session validations, next to the single unbatched DELETE that
// connect-pg-simple and Spring Session JDBC run.
//
//   npm run build && node bench/purge-bench.mjs            (1,000,000 expired + 100,000 live)
//   EXPIRED=100000 LIVE=10000 node bench/purge-bench.mjs   (smaller, for a quick look)
//   MODES=batched PURGE_DUTY_CYCLE=0.2 node bench/purge-bench.mjs
//
// Uses DATABASE_URL's server when set (in a fresh database it creates and drops), else an
// embedded PostgreSQL. `runPurgeBench()` returns the figures; run standalone, it prints them
// as JSON on stdout (progress goes to stderr).
//
// On a shared machine, other work comes and goes during a run. So "with purge" and "without
// purge" latencies are taken in alternating windows over the same period: the batched purge
// runs for `onMs`, is stopped between two batches (the service's own shutdown), rests for
// `offMs`, and the next run picks up where it stopped. The unbatched DELETE is one statement,
// so it gets a no-purge window of `offMs` right before and right after it.
import { Logger } from '@nestjs/common';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres } from '../dist/src/demo/embedded-postgres.js';
import { runMigrations } from '../dist/src/demo/migrate.js';
import { loadSessionLib } from './session-lib.mjs';
import { createScratchDatabase } from './scratch-database.mjs';

const { PurgeStore, SESSION_SQL, SessionPurgeService, resolveSessionOptions } = await loadSessionLib(
  new URL('../dist', import.meta.url).pathname,
);

/** What the peers run on every node (connect-pg-simple: `expire < to_timestamp(...)`; Spring: `EXPIRY_TIME < ?`). */
export const PEER_UNBATCHED_DELETE =
  'DELETE FROM user_sessions WHERE idle_expires_at < now() OR absolute_expires_at < now()';

const defaults = {
  expired: 1_000_000,
  live: 100_000,
  /** Concurrent validation loops, each at a steady rate. */
  loops: 8,
  /** Validations per second per loop (8 × 250 = 2,000/s in all). */
  ratePerLoop: 250,
  /** Alternating windows: the purge runs for onMs, then rests for offMs (the no-purge baseline). */
  onMs: 8_000,
  offMs: 4_000,
  /** SessionModule `purge` options for the batched run (the module's defaults otherwise). */
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
  const scratch = await createScratchDatabase(serverUrl, 'nps_purge_bench');
  const databaseUrl = scratch.url;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: o.loops + 2 });
  let closing = false; // pool.end() resolves before its connections have finished closing
  pool.on('error', (error) => closing || log(`idle connection lost: ${error.message}`));
  try {
    await runMigrations(databaseUrl);
    const version = (await pool.query('SHOW server_version')).rows[0].server_version;
    log(
      `PostgreSQL ${version}${embedded ? ' (embedded)' : ` at ${new URL(databaseUrl).host}`}; ${o.expired} expired + ${o.live} live sessions`,
    );

    const runs = {};
    for (const mode of o.modes) {
      await seed(pool, o, log);
      const load = new Load(pool, o);
      await load.start();
      const loadBefore = loadavg()[0];
      const purge =
        mode === 'unbatched'
          ? await unbatched(pool, load, o)
          : await batched(databaseUrl, load, o, mode === 'batched-unthrottled' ? { dutyCycle: 1 } : {});
      const loadAfter = loadavg()[0];
      const samples = await load.stop();
      const left = (await pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n;
      const off = stats(samples.off.validation);
      const on = stats(samples.on.validation);
      runs[mode] = {
        ...purge,
        rowsPerSecond: Math.round(purge.sessionsDeleted / (purge.purgeTimeMs / 1_000)),
        liveLeft: left,
        loadAverage1m: { start: round(loadBefore), end: round(loadAfter) },
        validation: {
          withoutPurge: { lookups: off.count, p50Ms: round(off.p50), p99Ms: round(off.p99), maxMs: round(off.max) },
          duringPurge: { lookups: on.count, p50Ms: round(on.p50), p99Ms: round(on.p99), maxMs: round(on.max) },
          p99Ratio: round(on.p99 / off.p99),
        },
        requestSideExpiry: summary(samples.on.expire, samples.off.expire),
      };
      log(`${mode}: ${JSON.stringify(runs[mode])}`);
    }
    return {
      server: `PostgreSQL ${version}${embedded ? ' (embedded)' : ''}`,
      expired: o.expired,
      live: o.live,
      load:
        `${o.loops} loops × ${o.ratePerLoop} validations/s (lookup by token hash, the store's SQL) + 1 loop × 20/s ` +
        'request-side expiries of expired sessions (DELETE with its audit row)',
      windows: `batched: purge on ${o.onMs} ms / off ${o.offMs} ms, alternating; unbatched: ${o.offMs} ms off before and after`,
      goal: 'batched.validation.p99Ratio <= 2.0',
      ...runs,
    };
  } finally {
    closing = true;
    await pool.end();
    await scratch.drop();
    await embedded?.stop();
  }
}

/** The module's purge, run in alternating windows until nothing is left; each window is a fresh run. */
async function batched(databaseUrl, load, o, override) {
  const purgePool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  purgePool.on('error', () => undefined);
  const options = resolveSessionOptions({ purge: { enabled: false, ...o.purge, ...override } });
  let sessionsDeleted = 0;
  let batches = 0;
  let purgeTimeMs = 0;
  let windows = 0;
  try {
    for (;;) {
      const purge = new SessionPurgeService(new PurgeStore(purgePool), options);
      load.phase = 'on';
      const started = performance.now();
      const stop = setTimeout(() => void purge.onApplicationShutdown(), o.onMs);
      const result = await purge.runOnce();
      clearTimeout(stop);
      purgeTimeMs += performance.now() - started;
      windows++;
      sessionsDeleted += result.sessionsDeleted;
      batches += result.batches;
      load.phase = 'off';
      if (!result.interrupted) break;
      await sleep(o.offMs);
    }
    await sleep(o.offMs);
  } finally {
    await purgePool.end();
  }
  return {
    sessionsDeleted,
    auditRowsWritten: sessionsDeleted,
    batches,
    purgeWindows: windows,
    purgeTimeMs: Math.round(purgeTimeMs),
    batchSize: options.purge.batchSize,
    dutyCycle: options.purge.dutyCycle,
  };
}

/** The peers' way: one DELETE of every expired row, no audit. */
async function unbatched(pool, load, o) {
  await sleep(o.offMs);
  load.phase = 'on';
  const started = performance.now();
  const { rowCount } = await pool.query(PEER_UNBATCHED_DELETE);
  const purgeTimeMs = performance.now() - started;
  load.phase = 'off';
  await sleep(o.offMs);
  return { sessionsDeleted: rowCount, auditRowsWritten: 0, purgeTimeMs: Math.round(purgeTimeMs) };
}

/** Fresh tables: `expired` sessions past idle and/or absolute expiry (some revoked tombstones), `live` ones. */
async function seed(pool, o, log) {
  const started = Date.now();
  await pool.query('TRUNCATE user_sessions, session_retired_tokens, session_audit_log');
  // Deterministic token hashes (sha256 of the row number); a realistic row: small data, ip, user agent.
  const insert = (from, to, idle, absolute, revoked) =>
    pool.query(
      `
    INSERT INTO user_sessions (token_hash, user_id, data, created_at, last_seen_at, authenticated_at, rotated_at,
                               idle_expires_at, absolute_expires_at, revoked_at, revoke_reason, ip, user_agent)
    SELECT sha256(int8send(g)), 'user-' || (g % 50000), jsonb_build_object('role', 'user', 'cart', g % 7),
           now() - interval '13 hours', now() - interval '1 hour', now() - interval '13 hours', now() - interval '1 hour',
           ${idle}, ${absolute}, ${revoked ? `CASE WHEN g % 20 = 0 THEN now() - interval '2 hours' END` : 'NULL'},
           ${revoked ? `CASE WHEN g % 20 = 0 THEN 'user' END` : 'NULL'},
           '203.0.113.' || (g % 250), 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36'
    FROM generate_series($1::bigint, $2::bigint) g`,
      [from, to],
    );
  const e = o.expired;
  const idleOnly = Math.floor(e * 0.7);
  const both = Math.floor(e * 0.2);
  // 70% idle-expired, spread over the last day; 20% past both deadlines; 10% past the absolute one only.
  await insert(
    1,
    idleOnly,
    `now() - (g % 86400) * interval '1 second' - interval '1 second'`,
    `now() + interval '1 hour'`,
    true,
  );
  await insert(
    idleOnly + 1,
    idleOnly + both,
    `now() - interval '2 hours'`,
    `now() - (g % 3600) * interval '1 second' - interval '1 second'`,
    true,
  );
  await insert(
    idleOnly + both + 1,
    e,
    `now() + interval '20 minutes'`,
    `now() - (g % 600) * interval '1 second' - interval '1 second'`,
    false,
  );
  await insert(e + 1, e + o.live, `now() + interval '30 minutes'`, `now() + interval '11 hours'`, false);
  await pool.query('VACUUM ANALYZE user_sessions');
  await pool.query('VACUUM ANALYZE session_audit_log');
  await pool.query('CHECKPOINT'); // the seed's writes are not the purge's to pay for
  log(`seeded ${e + o.live} sessions in ${((Date.now() - started) / 1_000).toFixed(1)} s`);
}

/**
 * Steady request traffic: `loops` validation loops and one loop that expires expired sessions
 * the way the request path does (the request that waits when a purge holds the row).
 * Latency counts from a request's planned start (or its real start, when a timer fired
 * early), so a loop that falls behind counts its waiting too (no coordinated omission), and
 * each sample is filed under the phase ('on' = purge running, 'off' = not) of that planned
 * start: a backlog built up during the purge is charged to the purge.
 */
class Load {
  #phases = [[0, 'warmup']];
  #running = true;
  #loops = [];
  #samples = {
    warmup: { validation: [], expire: [] },
    on: { validation: [], expire: [] },
    off: { validation: [], expire: [] },
  };

  constructor(pool, o) {
    this.pool = pool;
    this.o = o;
  }

  async start() {
    const { rows: live } = await this.pool.query(
      'SELECT token_hash FROM user_sessions WHERE idle_expires_at > now() AND absolute_expires_at > now()',
    );
    const { rows: expired } = await this.pool.query(
      'SELECT id FROM user_sessions WHERE idle_expires_at <= now() OR absolute_expires_at <= now() ORDER BY random() LIMIT 50000',
    );
    const hashes = live.map((r) => r.token_hash);
    const ids = expired.map((r) => r.id);
    let nextExpired = 0;
    const intervalMs = 1_000 / this.o.ratePerLoop;
    for (let i = 0; i < this.o.loops; i++) {
      this.#loops.push(
        this.#steady(intervalMs, (intervalMs * i) / this.o.loops, 'validation', async () => {
          const hash = hashes[Math.floor(Math.random() * hashes.length)];
          const { rows } = await this.pool.query({
            name: 'nps_lookup',
            text: SESSION_SQL.lookupByTokenHash.text,
            values: [hash],
          });
          if (rows.length !== 1) throw new Error('a live session was not found');
        }),
      );
    }
    this.#loops.push(
      this.#steady(50, 0, 'expire', () =>
        this.pool.query(SESSION_SQL.deleteWithEvent.text, [
          ids[nextExpired++ % ids.length],
          'expired_idle',
          null,
          null,
          null,
          '{}',
          true, // notify: announce the delete to caches, as the module does with a cache
        ]),
      ),
    );
    await sleep(1_000); // warm-up, not recorded
    this.phase = 'off';
  }

  set phase(phase) {
    this.#phases.push([performance.now(), phase]);
  }

  #phaseAt(time) {
    for (let i = this.#phases.length - 1; i >= 0; i--) if (this.#phases[i][0] <= time) return this.#phases[i][1];
    return 'warmup';
  }

  async stop() {
    this.#running = false;
    await Promise.all(this.#loops);
    return this.#samples;
  }

  async #steady(intervalMs, offsetMs, kind, request) {
    let next = performance.now() + offsetMs;
    while (this.#running) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      const start = Math.min(next, performance.now());
      await request();
      this.#samples[this.#phaseAt(start)][kind].push(performance.now() - start);
      next += intervalMs;
    }
  }
}

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? NaN };
}

function summary(on, off) {
  const a = stats(on);
  const b = stats(off);
  return {
    duringPurge: { requests: a.count, p99Ms: round(a.p99), maxMs: round(a.max) },
    withoutPurge: { requests: b.count, p99Ms: round(b.p99), maxMs: round(b.max) },
  };
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
