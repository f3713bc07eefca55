/* global fetch */
// nest-pg-session benchmark: `npm run bench` (= npm run build && node bench/run.js).
//
//   node bench/run.js                 full run: per route 4 rounds (ABBA order) of 3 s warm-up + ~10 s measured, 50 connections, 50 sessions;
//                                     10k vs 1M rows; purge bench at 100k expired + 10k live
//   node bench/run.js --quick         smoke test: 1 s warm-up + 3 s per route, smaller side benches
//   node bench/run.js --10m           the row-count test compares 10k with 10M rows (takes minutes to seed);
//                                     same as BENCH_10M=1
//   node bench/run.js --purge-full    the purge bench at its own full size (1M expired + 100k live; slow)
//   node bench/run.js --rounds=N      measured rounds per route, in ABBA order (default 4; 1 with --quick)
//   node bench/run.js --no-purge      skip the purge bench
//   node bench/run.js --no-rows       skip the 10k vs 1M/10M row-count test (its 1M seed takes a minute or two)
//   node bench/run.js --no-write-path skip the write-path bench (bench/write-path.mjs: login, rotate, touch, patch,
//                                     revoke, logout per second, notify on/off, vs connect-pg-simple; ~5 min)
//   node bench/run.js --write-path-only   only the write-path bench (its own flags pass through; results in
//                                     bench/results/write-path.json); = npm run bench:write-path
//
// Diagnostics: bench/profile.mjs (CPU µs/request per route, optional --cpu-prof summary);
// bench/route-cost.mjs (a session's µs per request in-process; BUILDS compares builds side by side).
//
// Postgres: DATABASE_URL's server when set (the bench creates fresh databases there and drops
// them), else an embedded PostgreSQL (dist/src/demo/embedded-postgres.js), like the tests.
//
// What runs: the parent (this file) seeds 100,000 sessions (user_sessions, via the migrations)
// and 100,000 express-session rows (connect-pg-simple's `session` table) with known tokens, then
// forks ONE child per adapter (bench/apps.js, express then fastify). Each child hosts several
// Nest apps on their own ports and counts every SQL statement sent through `pg` (reads =
// SELECT/WITH without data modification; writes = INSERT/UPDATE/DELETE). The parent drives
// each route with autocannon: 50 connections, each with its own cookie (autocannon's
// setupClient), so 50 distinct sessions. Counters are reset after the warm-up and read after
// the run, so SQL per request is the steady state of the measured window.
//
// Routes: (a) no session (@Public, {ok:true}); (b) bare SELECT: one pg SELECT by token hash on
// user_sessions with the store's SQL on the same pool (the floor); (c) ours, no cache (global
// SessionGuard, returns userId); (d) ours with `cache: { enabled: true }`; (e) express-session + connect-pg-simple (resave:false,
// saveUninitialized:false). On fastify the peer runs through Nest's FastifyAdapter.use()
// (@fastify/middie); if that fails, it is n/a and fastify ratios use the express peer.
//
// Steady state: before each route the 50 sessions get rotated_at = now() (no rotation inside a
// run; rotationInterval is 15 min) and last_seen_at spread evenly over the last 60 s, so
// touches (one conditional UPDATE per session per touchInterval = 60 s) happen at their real
// steady-state rate during the run.
//
// Verdict: each throughput target is judged on the child's CPU per request (user + system, the
// app's own work whatever else the machine runs), as the median over rounds of the ratio between
// two routes measured in the same round; req/s ratios are printed as INFO. See docs/performance.md.
//
// Output: one table on stdout, the targets with PASS/FAIL/INFO, the machine line; the same
// figures as JSON in bench/results/latest.json. Progress goes to stderr.
import 'reflect-metadata';
import autocannon from 'autocannon';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { fork } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres } from '../dist/src/demo/embedded-postgres.js';
import { runMigrations } from '../dist/src/demo/migrate.js';
import { loadSessionLib } from './session-lib.mjs';
import { runPurgeBench } from './purge-bench.mjs';
import { formatWritePath, runWritePathBench, writePathMain } from './write-path.mjs';
import { BENCH_USER_AGENT, hashOf, seedSessions, tokenOf } from './seed.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const lib = await loadSessionLib(join(here, '..', 'dist'));
const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
const TEN_M = args.has('--10m') || process.env.BENCH_10M === '1';
const PURGE_FULL = args.has('--purge-full');
const NO_PURGE = args.has('--no-purge');
const NO_ROWS = args.has('--no-rows');
const NO_WRITE_PATH = args.has('--no-write-path');
const ADAPTERS = (process.env.BENCH_ADAPTERS ?? 'express,fastify').split(','); // for development only
const WARMUP_S = QUICK ? 1 : 3;
const RUN_S = QUICK ? 3 : 10;
const CONNECTIONS = 50;
const SESSIONS = 50;
const SEEDED = 100_000;
const UA = BENCH_USER_AGENT;
const COOKIE = '__Host-sid';
const PEER_SECRET = `bench-${randomBytes(6).toString('hex')}`;
const QUIESCE_MS = 2_000;
const roundsArg = process.argv.find((a) => a.startsWith('--rounds='));
const ROUNDS = roundsArg ? Math.max(1, Number(roundsArg.slice(9))) : QUICK ? 1 : 4;
function percentile(values, q) {
  const s = Float64Array.from(values).sort();
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line) => process.stderr.write(`[bench] ${line}\n`);

// ---- tokens: deterministic per i, in the module's format (bench/seed.mjs) ---------------
const benchIds = Array.from({ length: SESSIONS }, (_, k) => k + 1);
const ourCookies = benchIds.map((i) => `${COOKIE}=${tokenOf(i)}`);
const peerSid = (i) => `bench-${i}`;
function peerCookie(i) {
  const value = `${peerSid(i)}`;
  const signature = createHmac('sha256', PEER_SECRET).update(value).digest('base64').replace(/=+$/, '');
  return `connect.sid=${encodeURIComponent(`s:${value}.${signature}`)}`;
}
const peerCookies = benchIds.map(peerCookie);

// ---- database ------------------------------------------------------------------------
async function createDatabase(serverUrl, name) {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
async function dropDatabase(serverUrl, name) {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
}

/** `rows` sessions in user_sessions; the first SESSIONS are the benchmarked ones. */
async function seedOurs(pool, rows) {
  const started = Date.now();
  await seedSessions(pool, rows, {
    verify: SESSIONS,
    progress: (done) => log(`  seeded ${done.toLocaleString('en')} / ${rows.toLocaleString('en')} sessions`),
  });
  log(
    `seeded ${rows.toLocaleString('en')} sessions in ${((Date.now() - started) / 1000).toFixed(1)} s (tokens verified)`,
  );
}

/** connect-pg-simple's table (its table.sql, without OIDS) and `rows` sessions for the same users. */
async function seedPeer(pool, rows) {
  await pool.query(`CREATE TABLE "session" ("sid" varchar NOT NULL COLLATE "default", "sess" json NOT NULL,
    "expire" timestamp(6) NOT NULL, CONSTRAINT "session_pkey" PRIMARY KEY ("sid"))`);
  await pool.query(`CREATE INDEX "IDX_session_expire" ON "session" ("expire")`);
  await pool.query(
    `
    INSERT INTO "session" (sid, sess, expire)
    SELECT 'bench-' || g,
           json_build_object('cookie', json_build_object('originalMaxAge', 1800000,
             'expires', to_char((now() + interval '30 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
             'secure', false, 'httpOnly', true, 'path', '/', 'sameSite', 'lax'), 'userId', 'user-' || g),
           now() + interval '30 minutes'
    FROM generate_series(1, $1::int) g`,
    [rows],
  );
  await pool.query('VACUUM ANALYZE "session"');
}

/** Steady state for the next run: no rotation due, last_seen_at spread evenly over the touch interval. */
async function refreshBenchSessions(pool) {
  await pool.query(
    `
    UPDATE user_sessions s
    SET rotated_at = now(), previous_token_hash = NULL, revoked_at = NULL,
        last_seen_at = now() - v.k * interval '1200 milliseconds',
        idle_expires_at = now() - v.k * interval '1200 milliseconds' + interval '30 minutes',
        absolute_expires_at = now() + interval '11 hours', ip = '127.0.0.1', user_agent = $2
    FROM (SELECT h, ord - 1 AS k FROM unnest($1::bytea[]) WITH ORDINALITY AS t(h, ord)) v
    WHERE s.token_hash = v.h`,
    [benchIds.map((i) => hashOf(tokenOf(i))), UA],
  );
  await pool.query(`UPDATE "session" SET expire = now() + interval '30 minutes' WHERE sid = ANY($1)`, [
    benchIds.map(peerSid),
  ]);
}

// ---- the child (one per adapter) -----------------------------------------------------
function startChild(adapter, databaseUrl) {
  const child = fork(join(here, 'apps.js'), [adapter], {
    env: {
      ...process.env,
      BENCH_DATABASE_URL: databaseUrl,
      BENCH_CACHE: '1',
      BENCH_PEER_SECRET: PEER_SECRET,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const waiting = new Map();
  let ready;
  const readyPromise = new Promise((resolve, reject) => {
    ready = resolve;
    child.once('exit', (code) => reject(new Error(`${adapter} child exited (${code}) before it was ready`)));
  });
  child.on('message', (m) => {
    if (m.ready) return ready(m);
    waiting.get(m.id)?.(m);
    waiting.delete(m.id);
  });
  const ask = (cmd) =>
    new Promise((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      child.send({ id, cmd });
    });
  return { child, ready: readyPromise, ask };
}

/** `length`: { duration: s } or { amount: requests }. */
function cannon(url, cookies, length, latencies) {
  return new Promise((resolve, reject) => {
    let n = 0;
    const instance = autocannon(
      {
        url,
        connections: CONNECTIONS,
        ...length,
        headers: { 'user-agent': UA },
        // One cookie per connection: 50 connections, 50 distinct sessions.
        setupClient: (client) => client.setHeaders({ 'user-agent': UA, cookie: cookies[n++ % cookies.length] }),
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    if (latencies) instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  });
}

async function probe(url, cookie) {
  const response = await fetch(url, { headers: { 'user-agent': UA, ...(cookie ? { cookie } : {}) } });
  return { status: response.status, body: await response.text() };
}

async function benchAdapter(adapter, databaseUrl, pool) {
  log(`${adapter}: starting child`);
  const c = startChild(adapter, databaseUrl);
  const info = await c.ready;
  const base = (app) => `http://127.0.0.1:${info.ports[app]}`;
  const routes = [
    { key: 'public', label: '(a) no session (@Public)', url: `${base('ours')}/public`, cookies: ourCookies },
    { key: 'bare', label: '(b) bare SELECT (floor)', url: `${base('ours')}/bare`, cookies: ourCookies },
    { key: 'ours', label: '(c) ours, no cache', url: `${base('ours')}/me`, cookies: ourCookies },
    { key: 'cached', label: '(d) ours, cache on', url: `${base('cached')}/me`, cookies: ourCookies },
    {
      key: 'peer',
      label: '(e) express-session+connect-pg-simple',
      url: info.ports.peer ? `${base('peer')}/me` : undefined,
      cookies: peerCookies,
      na: info.peer.ok ? undefined : `n/a (${info.peer.note})`,
    },
  ];
  const results = {};
  // Probes: every route answers 200 with the right user before it is measured.
  for (const r of routes) {
    if (r.na) continue;
    const p = await probe(r.url, r.cookies[0]);
    const expected = r.key === 'public' ? '"ok":true' : '"userId":"user-1"';
    if (p.status !== 200 || !p.body.includes(expected)) {
      r.na = `n/a (probe failed: ${p.status} ${p.body.slice(0, 120)})`;
      log(`${adapter} ${r.key}: ${r.na}`);
    }
  }
  const samples = Object.fromEntries(routes.map((r) => [r.key, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // ABCDE, then EDCBA: a load that drifts during the run falls on every route alike.
    for (const r of round % 2 ? [...routes].reverse() : routes) {
      if (r.na) continue;
      await refreshBenchSessions(pool);
      const warm = await cannon(r.url, r.cookies, { duration: WARMUP_S });
      await sleep(QUIESCE_MS); // requests in flight when the warm-up stopped finish outside the window
      // Stopping by time drops the requests in flight; on those the server sees a closed socket
      // (no client address: a client-change write). So: re-seed the steady state after the
      // warm-up, and measure a fixed number of requests (about RUN_S seconds at the warm-up's
      // rate), which every connection completes: no request is aborted inside the window.
      await refreshBenchSessions(pool);
      await pool.query('TRUNCATE session_audit_log');
      const amount = Math.max(CONNECTIONS * 20, Math.round((warm.requests.total / WARMUP_S) * RUN_S));
      await c.ask('reset');
      const load = loadavg()[0];
      const latencies = [];
      const res = await cannon(r.url, r.cookies, { amount }, latencies);
      await sleep(200);
      const { counts } = await c.ask('counts');
      const { rows: audit } = await pool.query(
        `SELECT event, details::text AS details, count(*)::int AS n FROM session_audit_log GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5`,
      );
      samples[r.key].push({ res, latencies, counts, audit, load });
      log(
        `${adapter} round ${round + 1} ${r.key}: ${Math.round(res.requests.total / res.duration)} req/s, p50 ${res.latency.p50} ms, p99 ${res.latency.p99} ms, ` +
          `${res.duration} s, sql ${JSON.stringify(counts)}, non2xx ${res.non2xx}, errors ${res.errors}, audit ${JSON.stringify(audit)}`,
      );
    }
  }
  for (const r of routes) {
    if (r.na) {
      results[r.key] = { label: r.label, na: r.na };
      continue;
    }
    const runs = samples[r.key];
    const sum = (f) => runs.reduce((acc, x) => acc + f(x), 0);
    const total = sum((x) => x.res.requests.total);
    const duration = sum((x) => x.res.duration);
    const served = sum((x) => x.counts.requests);
    const counts = {
      reads: sum((x) => x.counts.reads),
      writes: sum((x) => x.counts.writes),
      other: sum((x) => x.counts.other),
    };
    const writeKinds = {};
    for (const x of runs)
      for (const [k, v] of Object.entries(x.counts.writeKinds)) writeKinds[k] = (writeKinds[k] ?? 0) + v;
    const latencies = runs.flatMap((x) => x.latencies);
    const cpuMicros = sum((x) => x.counts.cpuMicros);
    results[r.key] = {
      label: r.label,
      // req/s over all rounds; latency percentiles over every response of every round.
      reqPerSec: Math.round(total / duration),
      perRoundReqPerSec: runs.map((x) => Math.round(x.res.requests.total / x.res.duration)),
      durationS: Math.round(duration * 100) / 100,
      p50Ms: round3(percentile(latencies, 0.5)),
      p99Ms: round3(percentile(latencies, 0.99)),
      requests: total,
      non2xx: sum((x) => x.res.non2xx),
      errors: sum((x) => x.res.errors),
      timeouts: sum((x) => x.res.timeouts),
      serverRequests: served,
      nodeCpuMicrosPerReq: served ? Math.round(cpuMicros / served) : NaN,
      perRoundCpuMicrosPerReq: runs.map((x) => round3(x.counts.cpuMicros / x.counts.requests)),
      sqlReadsPerReq: served ? counts.reads / served : NaN,
      sqlWritesPerReq: served ? counts.writes / served : NaN,
      sqlOtherPerReq: served ? counts.other / served : NaN,
      sqlCounts: counts,
      writeKinds,
      auditRowsInWindow: runs.map((x) => x.audit),
      loadAverage1m: runs.map((x) => Math.round(x.load * 100) / 100),
    };
  }
  // Requests that must cost no SQL: no cookie, malformed tokens (and an unknown well-formed one,
  // which costs exactly two reads: the lookup and the retired-token check of theft detection). Run after the measured routes and kept under
  // the flood limit (100 bad tokens per source per minute), which would otherwise refuse every
  // later request from 127.0.0.1 with a 429 (and no SQL).
  const zeroSql = {};
  const oursMe = `${base('ours')}/me`;
  for (const [name, cookie, n] of [
    ['noCookie', undefined, 100],
    ['malformed', `${COOKIE}=not-a-token!`, 30],
    ['malformed43', `${COOKIE}=${'A'.repeat(42)}B`, 30],
    ['unknownWellFormed', `${COOKIE}=${tokenOf(999_999_999)}`, 30],
  ]) {
    await c.ask('reset');
    const statuses = {};
    for (let i = 0; i < n; i++) {
      const p = await probe(oursMe, cookie);
      statuses[p.status] = (statuses[p.status] ?? 0) + 1;
    }
    const { counts } = await c.ask('counts');
    zeroSql[name] = { requests: n, statuses, sql: counts.reads + counts.writes + counts.other, ...counts };
  }
  log(`${adapter} zero-SQL checks: ${JSON.stringify(zeroSql)}`);
  await c.ask('stop');
  return { adapter, peerNote: info.peer.note, results, zeroSql };
}

// ---- 10k vs 1M (or 10M) rows: the validator's lookup, in one process -----------------------
/** The module's own SessionValidator on `db`, no cache (this measures the SQL lookup). */
async function validatorApp(db) {
  class RowCountModule {}
  Module({
    imports: [
      TypeOrmModule.forRoot({
        name: db.name,
        type: 'postgres',
        url: db.url,
        autoLoadEntities: true,
        extra: { max: 8 },
      }),
      lib.SessionModule.forRootAsync({ useFactory: () => ({ purge: { enabled: false } }), dataSource: db.name }),
    ],
  })(RowCountModule);
  return NestFactory.createApplicationContext(RowCountModule, { logger: ['error'] });
}

async function rowCountBench(serverUrl) {
  const big = TEN_M ? 10_000_000 : 1_000_000;
  const sizes = [10_000, big];
  const seedOrder = [big, 10_000]; // the big seed's write-back settles while the small one seeds
  const dbs = [];
  try {
    for (const rows of seedOrder) {
      const name = `nps_bench_rows_${rows}_${randomBytes(3).toString('hex')}`;
      const url = await createDatabase(serverUrl, name);
      await runMigrations(url);
      const pool = new pg.Pool({ connectionString: url, max: 8 });
      pool.on('error', () => undefined);
      log(`row-count bench: seeding ${rows.toLocaleString('en')} sessions into ${name}`);
      await seedOurs(pool, rows);
      await pool.query('CHECKPOINT');
      dbs.push({ rows, name, url, pool });
    }
    dbs.sort((a, b) => a.rows - b.rows);
    await sleep(3_000);
    for (const db of dbs) {
      db.app = await validatorApp(db);
      db.validator = db.app.get(lib.SessionValidator);
      await refreshBenchSessions(db.pool).catch(() => undefined); // no peer table here: only the first UPDATE matters
      db.samples = [];
    }
    const requests = ourCookies.map((cookie) => ({ headers: { cookie, 'user-agent': UA }, ip: '127.0.0.1' }));
    const response = { setHeader() {}, append() {} };
    const loops = 8;
    const windowMs = QUICK ? 500 : 1_000;
    const rounds = QUICK ? 4 : 16;
    // Alternating windows (10k, big, big, 10k, ...), the same 50 sessions and 8 concurrent
    // loops on each: the shared machine's noise falls on both sizes alike.
    const run = async (db, ms, record) => {
      const samples = [];
      const end = performance.now() + ms;
      await Promise.all(
        Array.from({ length: loops }, async (_, l) => {
          let i = l;
          while (performance.now() < end) {
            const started = performance.now();
            const outcome = await db.validator.validate(requests[i++ % requests.length], response);
            if (!outcome.ok) throw new Error(`validation failed on ${db.rows} rows: ${outcome.reason}`);
            samples.push(performance.now() - started);
          }
        }),
      );
      if (record) db.samples.push(...samples);
      return samples;
    };
    const pct = (values, q) => {
      const s = [...values].sort((a, b) => a - b);
      return s[Math.min(s.length - 1, Math.floor(q * s.length))];
    };
    for (const db of dbs) await run(db, 1_000, false); // warm-up
    const pairedRatios = [];
    for (let round = 0; round < rounds; round++) {
      const p50 = {};
      for (const db of round % 2 ? [...dbs].reverse() : dbs) p50[db.rows] = pct(await run(db, windowMs, true), 0.5);
      pairedRatios.push(p50[big] / p50[10_000]);
    }
    const out = {};
    for (const db of dbs) {
      out[db.rows] = {
        validations: db.samples.length,
        p50Ms: round3(pct(db.samples, 0.5)),
        p99Ms: round3(pct(db.samples, 0.99)),
      };
      const { rows: size } = await db.pool.query(
        `SELECT pg_size_pretty(pg_relation_size('user_sessions_token_hash_key')) AS size`,
      );
      out[db.rows].tokenIndexSize = size[0].size;
    }
    return {
      sizes,
      method:
        `SessionValidator.validate() in-process, ${loops} concurrent loops over the same ${SESSIONS} sessions, ` +
        `${rounds} alternating windows of ${windowMs} ms per size`,
      results: out,
      p50Ratio: round3(out[big].p50Ms / out[10_000].p50Ms),
      pairedWindowP50Ratios: {
        median: round3(pct(pairedRatios, 0.5)),
        min: round3(Math.min(...pairedRatios)),
        max: round3(Math.max(...pairedRatios)),
      },
    };
  } finally {
    for (const db of dbs) {
      await db.app?.close().catch(() => undefined);
      await db.pool.end().catch(() => undefined);
      await dropDatabase(serverUrl, db.name);
    }
  }
}

// ---- output ----------------------------------------------------------------------------
const round3 = (n) => Math.round(n * 1000) / 1000;
const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
function pad(cells, widths) {
  return cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
}

function printTable(adapters) {
  const head = [
    'route',
    'adapter',
    'req/s',
    'p50 ms',
    'p99 ms',
    'SQL reads/req',
    'SQL writes/req',
    'app CPU µs/req',
    'non-2xx',
    'errors',
  ];
  const rows = [];
  for (const a of adapters) {
    for (const r of Object.values(a.results)) {
      if (r.na) rows.push([r.label, a.adapter, r.na, '', '', '', '', '', '', '']);
      else
        rows.push([
          r.label,
          a.adapter,
          r.reqPerSec,
          fmt(r.p50Ms, 1),
          fmt(r.p99Ms, 1),
          fmt(r.sqlReadsPerReq, 4),
          fmt(r.sqlWritesPerReq, 4),
          r.nodeCpuMicrosPerReq,
          r.non2xx,
          r.errors,
        ]);
    }
  }
  const widths = head.map((h, i) =>
    Math.max(
      h.length,
      ...rows.filter((r) => !(i === 2 && String(r[2]).startsWith('n/a'))).map((r) => String(r[i]).length),
    ),
  );
  const lines = [
    pad(head, widths),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map((r) => pad(r, widths).trimEnd()),
  ];
  return lines.join('\n');
}

/**
 * How much more app CPU per request `ref` costs than `ours`, round by round: in each round the
 * two routes ran minutes apart at most (ABBA order), so the machine's load falls on both alike.
 * The median of the per-round ratios is the verdict; min and max show the spread.
 */
function cpuRatio(ref, ours) {
  const perRound = ours.perRoundCpuMicrosPerReq.map((cpu, k) => ref.perRoundCpuMicrosPerReq[k] / cpu);
  const sorted = [...perRound].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

/**
 * The targets of DESIGN.md GOALS, judged on app CPU per request (the steadier figure: the
 * child's own CPU, whatever else the shared machine runs). Written as "reference CPU / ours",
 * which is the req/s ratio the app would reach when its CPU is the bottleneck; req/s itself
 * is printed as INFO beside each ratio.
 */
function targets(adapters, rowCount) {
  const out = [];
  const check = (name, value, ok, detail) => out.push({ target: name, value, pass: ok, detail });
  const versus = (adapter, name, ref, ours, goal) => {
    const cpu = cpuRatio(ref, ours);
    check(
      `${adapter}: ${name} >= ${goal}x (app CPU per request)`,
      cpu.median.toFixed(3),
      cpu.median >= goal,
      `${ref.nodeCpuMicrosPerReq} / ${ours.nodeCpuMicrosPerReq} µs; per round ${cpu.min.toFixed(3)}-${cpu.max.toFixed(3)}`,
    );
    check(
      `${adapter}: ${name} in req/s`,
      (ours.reqPerSec / ref.reqPerSec).toFixed(3),
      null,
      `${ours.reqPerSec} / ${ref.reqPerSec} req/s`,
    );
  };
  const expressPeer = adapters.find((a) => a.adapter === 'express')?.results.peer;
  for (const a of adapters) {
    const r = a.results;
    const ours = r.ours;
    if (ours?.na) continue;
    for (const x of Object.values(r)) {
      if (!x.na && (x.non2xx > 0 || x.errors > 0 || x.timeouts > 0)) {
        check(
          `${a.adapter}: ${x.label} answered only 2xx`,
          x.non2xx + x.errors + x.timeouts,
          false,
          `${x.non2xx} non-2xx, ${x.errors} errors, ${x.timeouts} timeouts: its figures are not valid`,
        );
      }
    }
    versus(a.adapter, 'no cache vs bare SELECT', r.bare, ours, 0.9);
    let peer = r.peer;
    if (!peer || peer.na) peer = expressPeer && !expressPeer.na ? expressPeer : undefined;
    if (peer) versus(a.adapter, 'no cache vs express-session+connect-pg-simple', peer, ours, 1.8);
    else check(`${a.adapter}: no cache vs peer >= 1.8`, 'n/a', false, 'no peer measured');
    versus(a.adapter, 'cache on vs no session', r.public, r.cached, 0.85);
    const statements = ours.sqlReadsPerReq + ours.sqlWritesPerReq + ours.sqlOtherPerReq;
    check(
      `${a.adapter}: no cache exactly 1 SQL/request at steady state`,
      statements.toFixed(4),
      Math.abs(ours.sqlReadsPerReq - 1) < 0.005 && ours.sqlOtherPerReq === 0 && ours.sqlWritesPerReq <= 0.01,
      `reads ${fmt(ours.sqlReadsPerReq, 4)} + writes ${fmt(ours.sqlWritesPerReq, 4)} + other ${fmt(ours.sqlOtherPerReq, 4)}`,
    );
    check(
      `${a.adapter}: no cache writes/request <= 0.01`,
      ours.sqlWritesPerReq.toFixed(4),
      ours.sqlWritesPerReq <= 0.01,
      `${ours.sqlCounts.writes} writes / ${ours.serverRequests} req (peer ${peer ? fmt(peer.sqlWritesPerReq, 2) : 'n/a'})`,
    );
    check(
      `${a.adapter}: cache on SQL reads/request <= 0.05`,
      r.cached.sqlReadsPerReq.toFixed(4),
      r.cached.sqlReadsPerReq <= 0.05,
      `${r.cached.sqlCounts.reads} reads / ${r.cached.serverRequests} req`,
    );
    const unknown = a.zeroSql.unknownWellFormed;
    check(
      `${a.adapter}: unknown token: 2 SQL reads (lookup + retired tokens)`,
      (unknown.reads / unknown.requests).toFixed(4),
      unknown.reads === 2 * unknown.requests,
      `${unknown.reads} reads / ${unknown.requests} requests, statuses ${JSON.stringify(unknown.statuses)}`,
    );
    for (const [name, z] of Object.entries(a.zeroSql)) {
      if (name === 'unknownWellFormed') continue;
      check(
        `${a.adapter}: ${name === 'noCookie' ? 'no cookie' : `malformed token (${name})`}: 0 SQL`,
        z.sql,
        z.sql === 0,
        `${z.requests} requests, statuses ${JSON.stringify(z.statuses)}`,
      );
    }
  }
  if (rowCount) {
    const [small, big] = rowCount.sizes;
    check(
      `validation p50 with ${big.toLocaleString('en')} rows <= 1.2x with ${small.toLocaleString('en')} rows${TEN_M ? '' : ' (10k vs 1M: the 10M seed is opt-in, --10m)'}`,
      rowCount.p50Ratio,
      rowCount.p50Ratio <= 1.2,
      `${rowCount.results[big].p50Ms} ms / ${rowCount.results[small].p50Ms} ms`,
    );
  }
  return out;
}

// ---- main ------------------------------------------------------------------------------
async function main() {
  const startedAt = new Date();
  let embedded;
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    log('DATABASE_URL not set: starting an embedded PostgreSQL');
    embedded = await startEmbeddedPostgres();
    serverUrl = embedded.url;
  }
  const mainDb = `nps_bench_${randomBytes(4).toString('hex')}`;
  let pool;
  try {
    const databaseUrl = await createDatabase(serverUrl, mainDb);
    await runMigrations(databaseUrl);
    pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    pool.on('error', () => undefined);
    const pgVersion = (await pool.query('SHOW server_version')).rows[0].server_version;
    const cpu = cpus();
    const machine = {
      cpu: cpu[0]?.model?.trim() ?? 'unknown',
      cores: cpu.length,
      node: process.version,
      postgres: `${pgVersion}${embedded ? ' (embedded)' : ' (DATABASE_URL)'}`,
      loadAverageAtStart: loadavg().map((n) => Math.round(n * 100) / 100),
    };
    const machineLine = `machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, PostgreSQL ${machine.postgres}, load avg ${machine.loadAverageAtStart.join(' ')}`;
    log(machineLine);

    await seedOurs(pool, SEEDED);
    await seedPeer(pool, SEEDED);
    await pool.query('CHECKPOINT');

    const adapters = [];
    for (const adapter of ADAPTERS) adapters.push(await benchAdapter(adapter, databaseUrl, pool));

    let rowCount;
    if (!NO_ROWS) {
      log(`row-count bench (${TEN_M ? '10k vs 10M' : '10k vs 1M'})`);
      rowCount = await rowCountBench(serverUrl);
      log(`row-count bench: ${JSON.stringify(rowCount.results)} ${JSON.stringify(rowCount.pairedWindowP50Ratios)}`);
    }

    let purge;
    if (!NO_PURGE) {
      const purgeOptions = PURGE_FULL
        ? {}
        : QUICK
          ? { expired: 20_000, live: 2_000, onMs: 2_000, offMs: 1_000 }
          : { expired: 100_000, live: 10_000 };
      log(`purge bench: ${JSON.stringify(purgeOptions)} (full size: --purge-full)`);
      purge = await runPurgeBench({ databaseUrl: serverUrl, ...purgeOptions, log: (line) => log(`[purge] ${line}`) });
    }

    let writePath;
    if (!NO_WRITE_PATH) {
      log('write-path bench (bench/write-path.mjs)');
      writePath = await runWritePathBench({
        databaseUrl: serverUrl,
        ...(QUICK ? { quick: true, seconds: 1, rounds: 1, sizeRows: 2_000 } : {}),
        log: (line) => log(`[write-path] ${line}`),
      });
    }

    const checks = targets(adapters, rowCount);
    const fastifyPeer = adapters.find((a) => a.adapter === 'fastify')?.results.peer;
    const lines = [];
    lines.push(
      `nest-pg-session bench ${startedAt.toISOString()}  mode: ${QUICK ? 'QUICK (1 s warm-up, 3 s run)' : `full (${WARMUP_S} s warm-up, ${RUN_S} s run)`} x ${ROUNDS} round(s) per route, ` +
        `${CONNECTIONS} connections, ${SESSIONS} distinct sessions, ${SEEDED.toLocaleString('en')} seeded sessions per table`,
    );
    lines.push(machineLine);
    lines.push('');
    lines.push(printTable(adapters));
    if (fastifyPeer?.na) lines.push('note: no fastify peer; fastify ratios against the peer use the EXPRESS peer.');
    else lines.push('note: the fastify peer runs express-session through Nest FastifyAdapter.use() (@fastify/middie).');
    lines.push(
      'SQL counts: every statement through pg.Client#query in the child, after the warm-up; reads = SELECT/WITH, writes = INSERT/UPDATE/DELETE.',
    );
    lines.push(
      "app CPU µs/req: the child process's user+system CPU over the measured window / requests served (Node side only, not Postgres; less load-sensitive than req/s).",
    );
    lines.push('');
    if (rowCount) {
      lines.push(`row count (${rowCount.method}):`);
      for (const [rows, r] of Object.entries(rowCount.results)) {
        lines.push(
          `  ${Number(rows).toLocaleString('en').padStart(10)} rows: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.validations} validations, token index ${r.tokenIndexSize}`,
        );
      }
      const pr = rowCount.pairedWindowP50Ratios;
      lines.push(
        `  p50 ratio ${rowCount.p50Ratio} (pooled); per adjacent window pair: median ${pr.median}, min ${pr.min}, max ${pr.max}`,
      );
      if (!TEN_M) lines.push('  (default run compares 10k with 1M rows; 10M is opt-in: --10m or BENCH_10M=1)');
      lines.push('');
    }
    if (purge) {
      lines.push(
        `purge (bench/purge-bench.mjs, ${purge.expired.toLocaleString('en')} expired + ${purge.live.toLocaleString('en')} live${PURGE_FULL ? '' : '; full size: --purge-full'}):`,
      );
      for (const mode of ['batched', 'batched-unthrottled', 'unbatched']) {
        const m = purge[mode];
        if (!m) continue;
        lines.push(
          `  ${mode.padEnd(20)} ${String(m.sessionsDeleted).padStart(8)} deleted in ${m.purgeTimeMs} ms (${m.rowsPerSecond} rows/s); ` +
            `validation p99 ${m.validation.withoutPurge.p99Ms} -> ${m.validation.duringPurge.p99Ms} ms during purge (x${m.validation.p99Ratio}), ` +
            `p50 ${m.validation.withoutPurge.p50Ms} -> ${m.validation.duringPurge.p50Ms} ms`,
        );
      }
      lines.push(
        `  goal: ${purge.goal}: ${purge.batched ? (purge.batched.validation.p99Ratio <= 2 ? 'PASS' : 'FAIL') : 'n/a'}`,
      );
      lines.push('');
    }
    if (writePath) lines.push(formatWritePath(writePath), '');
    lines.push('targets:');
    for (const c of checks) {
      const verdict = c.pass === null ? 'INFO' : c.pass ? 'PASS' : 'FAIL';
      lines.push(`  ${verdict}  ${c.target}: ${c.value}  (${c.detail})`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);

    const figures = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      flags: { quick: QUICK, tenM: TEN_M, purgeFull: PURGE_FULL, noPurge: NO_PURGE, noRows: NO_ROWS },
      settings: {
        rounds: ROUNDS,
        warmupS: WARMUP_S,
        runS: RUN_S,
        connections: CONNECTIONS,
        sessions: SESSIONS,
        seeded: SEEDED,
      },
      machine,
      adapters,
      rowCount: rowCount ?? null,
      purge: purge ?? null,
      writePath: writePath ?? null,
      targets: checks,
      printed: lines.join('\n'),
    };
    await mkdir(join(here, 'results'), { recursive: true });
    const file = join(here, 'results', 'latest.json');
    await writeFile(`${file}.tmp`, `${JSON.stringify(figures, null, 2)}\n`);
    const { rename } = await import('node:fs/promises');
    await rename(`${file}.tmp`, file);
    log(`wrote ${file}`);
  } finally {
    await pool?.end().catch(() => undefined);
    await dropDatabase(serverUrl, mainDb).catch(() => undefined);
    await embedded?.stop();
  }
}

(args.has('--write-path-only') ? writePathMain(process.argv.slice(2)) : main()).catch((error) => {
  console.error(error);
  process.exit(1);
});
