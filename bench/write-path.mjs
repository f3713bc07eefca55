// Write-path benchmark: the statements that grow with active users rather than requests —
// login (create), rotate, touch, data patch, revoke, logout — in operations per second, with
// `cache.notify` on and off, next to connect-pg-simple's equivalent (set, touch, destroy), and
// the one read every request makes (lookup vs the peer's get) for scale.
//
//   npm run bench:write-path             (= npm run build && node bench/write-path.mjs)
//   node bench/run.js --write-path-only  the same, as part of the bench's flags
//   node bench/write-path.mjs --quick    1 round of 1 s windows, smaller row-size sample
//   options (defaults): --concurrency=1,16 --seconds=1.5 --rounds=4 --ops=create,rotate,... --size-rows=20000
//                       --out=bench/results/write-path.json
//
// Drives SessionStore directly (bench/session-lib.mjs loads it from dist), no HTTP: what is
// measured is the statement, the pg round trip and the commit. PostgreSQL: DATABASE_URL's
// server (a fresh database there, dropped at the end), else an embedded one — which runs with
// fsync=off, so commits cost no flush and write figures are far above a real server's: the
// printed settings say which it was.
//
// Why with concurrency: every transaction that sent a NOTIFY takes one cluster-wide lock at
// commit (PreCommit_Notify) and holds it until its commit is flushed, so notifying commits
// queue behind each other instead of sharing a WAL flush (group commit). At 1 client that costs
// little; at 16 it is the ceiling. A LISTEN connection (as the cache keeps) is open throughout,
// counting the notices that arrive: with notify on, exactly one per rotate/patch/revoke/logout.
//
// Each (op, concurrency) runs its variants — ours notify off, ours notify on, the peer — in
// ABBA order over `rounds` rounds of `seconds` each, so the machine's drift falls on all alike;
// ratios (on/off, ours/peer) are taken within each round and the median printed. Output: a
// table on stdout, figures in bench/results/write-path.json, progress on stderr.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres } from '../dist/src/demo/embedded-postgres.js';
import { runMigrations } from '../dist/src/demo/migrate.js';
import { loadSessionLib } from './session-lib.mjs';
import { seedSessions } from './seed.mjs';
import { createPeerTable, ourOps, peerOps } from './write-path-ops.mjs';
import { measureRowSizes } from './row-sizes.mjs';
import { formatWritePath, summarise } from './write-path-report.mjs';
import { createScratchDatabase } from './scratch-database.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { SessionStore } = await loadSessionLib(join(here, '..', 'dist'));
const connectPgSimple = (await import('connect-pg-simple')).default;
const expressSession = (await import('express-session')).default;

export const OPS = ['lookup', 'create', 'touch', 'rotate', 'patch', 'revoke', 'logout'];
/** Ops whose statement sends a notice per session with notify on (create and touch send none). */
const NOTIFYING = new Set(['rotate', 'patch', 'revoke', 'logout']);
const SEEDED = 100_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const pct = (xs, q) => {
  const s = Float64Array.from(xs).sort();
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const r3 = (n) => Math.round(n * 1000) / 1000;

/** Runs `step` on every state at once until `ms` have passed (or the supply ran out); ops/s over the whole window. */
async function measureWindow(op, states, ms) {
  const latencies = [];
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    states.map(async (state) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        if (!(await op.step(state))) return;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return {
    ops: latencies.length,
    opsPerSec: Math.round(latencies.length / seconds),
    p50Ms: r3(pct(latencies, 0.5)),
    p99Ms: r3(pct(latencies, 0.99)),
  };
}

/** A LISTEN connection like the cache's: counts the notices it hears. */
async function startListener(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const heard = { n: 0 };
  client.on('notification', () => heard.n++);
  await client.query('LISTEN nest_pg_session');
  return { heard, end: () => client.end() };
}
/** Waits (≤ 2 s) until `expected` notices arrived since `from`; returns how many did. */
async function noticesSince(heard, from, expected) {
  for (let waited = 0; heard.n - from < expected && waited < 2_000; waited += 20) await sleep(20);
  await sleep(50); // and no more than expected: a stray one would show
  return heard.n - from;
}

function parseArgs(argv) {
  const flag = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const quick = argv.includes('--quick');
  return {
    quick,
    concurrency: (flag('concurrency') ?? '1,16').split(',').map(Number),
    seconds: Number(flag('seconds') ?? (quick ? 1 : 1.5)),
    rounds: Number(flag('rounds') ?? (quick ? 1 : 4)),
    ops: (flag('ops') ?? OPS.join(',')).split(','),
    sizeRows: Number(flag('size-rows') ?? (quick ? 2_000 : 20_000)),
    out: flag('out'),
  };
}

/** Refuses options that would measure nothing (or forever) before a database is made. */
function checkOptions(o) {
  const bad = (what) => {
    throw new Error(`write-path bench: ${what}`);
  };
  if (!o.concurrency.every((c) => Number.isInteger(c) && c >= 1 && c <= 64)) bad('--concurrency takes integers 1..64');
  if (!(o.seconds > 0 && o.seconds <= 60)) bad('--seconds takes a number of seconds in (0, 60]');
  if (!(Number.isInteger(o.rounds) && o.rounds >= 1)) bad('--rounds takes an integer >= 1');
  if (!(Number.isInteger(o.sizeRows) && o.sizeRows >= 100)) bad('--size-rows takes an integer >= 100');
  for (const op of o.ops) if (!OPS.includes(op)) bad(`unknown op '${op}' (ops: ${OPS.join(', ')})`);
}

export async function runWritePathBench(options = {}) {
  const o = { ...parseArgs([]), ...options };
  const log = o.log ?? ((line) => process.stderr.write(`[write-path] ${line}\n`));
  checkOptions(o);
  const embedded = (o.databaseUrl ?? process.env.DATABASE_URL) ? undefined : await startEmbeddedPostgres();
  const serverUrl = o.databaseUrl ?? process.env.DATABASE_URL ?? embedded.url;
  const scratch = await createScratchDatabase(serverUrl, 'nps_write_bench');
  const databaseUrl = scratch.url;
  const maxC = Math.max(...o.concurrency);
  const pools = [];
  const newPool = (max) => {
    const pool = new pg.Pool({ connectionString: databaseUrl, max });
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  };
  let listener;
  try {
    await runMigrations(databaseUrl);
    const pool = newPool(maxC); // ours (both stores share it, as notify is a per-statement switch)
    const peerPool = newPool(maxC);
    const server = await serverSettings(pool, embedded);
    log(`${server.line}; seeding ${SEEDED.toLocaleString('en')} sessions in each table`);
    await seedSessions(pool, SEEDED);
    await createPeerTable(pool, SEEDED);
    await pool.query('CHECKPOINT'); // the seed's dirty pages are not flushed during the first windows
    listener = await startListener(databaseUrl);
    const peerStore = new (connectPgSimple(expressSession))({
      pool: peerPool,
      pruneSessionInterval: false,
      createTableIfMissing: false,
    });
    const variants = {
      off: ourOps(new SessionStore(pool, { notify: false }), pool),
      on: ourOps(new SessionStore(pool, { notify: true }), pool),
      peer: peerOps(peerStore, peerPool),
    };
    const cases = [];
    for (const op of o.ops) {
      for (const c of o.concurrency) {
        // Touch and lookup send no notice either way: one "ours" variant (measured as 'off').
        const keys = NOTIFYING.has(op) || op === 'create' ? ['off', 'on', 'peer'] : ['off', 'peer'];
        const runs = Object.fromEntries(keys.map((k) => [k, []]));
        for (let round = 0; round < o.rounds; round++) {
          for (const key of round % 2 ? [...keys].reverse() : keys) {
            const variant = variants[key][op];
            const states = await variant.prepare(c);
            const heardFrom = listener.heard.n;
            const result = await measureWindow(variant, states, o.seconds * 1000);
            const expected = key === 'on' && NOTIFYING.has(op) ? result.ops : 0;
            result.notices = await noticesSince(listener.heard, heardFrom, expected);
            result.noticesExpected = expected;
            await variant.finish?.();
            runs[key].push(result);
            log(`${op} x${c} ${key}${key === 'peer' ? ` (${variant.label})` : ''}: ${JSON.stringify(result)}`);
          }
        }
        cases.push(summarise(op, c, runs, variants.peer[op].label));
      }
    }
    log(`row sizes: ${o.sizeRows.toLocaleString('en')} logins, rotations, logouts and purges through the store`);
    const sizes = await measureRowSizes({ serverUrl, rows: o.sizeRows, SessionStore, log });
    return {
      server,
      machine: `${cpus()[0]?.model?.trim()}, ${cpus().length} cores, node ${process.version}, load avg ${loadavg()
        .map((n) => n.toFixed(2))
        .join(' ')}`,
      method:
        `SessionStore in-process against ${SEEDED.toLocaleString('en')} seeded sessions per table; ` +
        `${o.rounds} round(s) of ${o.seconds} s per variant in ABBA order; one LISTEN connection open`,
      cases,
      sizes,
    };
  } finally {
    await listener?.end().catch(() => undefined);
    for (const p of pools) await p.end().catch(() => undefined);
    await scratch.drop();
    await embedded?.stop();
  }
}

async function serverSettings(pool, embedded) {
  const { rows } = await pool.query(
    `SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync,
            current_setting('synchronous_commit') AS synchronous_commit, current_setting('wal_level') AS wal_level`,
  );
  const s = rows[0];
  return {
    ...s,
    embedded: Boolean(embedded),
    line:
      `PostgreSQL ${s.version}${embedded ? ' (embedded)' : ' (DATABASE_URL)'}, fsync=${s.fsync}, ` +
      `synchronous_commit=${s.synchronous_commit}${s.fsync === 'off' ? ' (no flush at commit: an upper bound)' : ''}`,
  };
}

export { formatWritePath };

/** Standalone: runs, prints, writes bench/results/write-path.json. */
export async function writePathMain(argv) {
  const options = parseArgs(argv);
  const startedAt = new Date().toISOString();
  const result = await runWritePathBench(options);
  const printed = formatWritePath(result);
  process.stdout.write(`${printed}\n`);
  const file = options.out ? resolve(options.out) : join(here, 'results', 'write-path.json');
  await mkdir(dirname(file), { recursive: true });
  const figures = { startedAt, finishedAt: new Date().toISOString(), options, ...result, printed };
  await writeFile(`${file}.tmp`, `${JSON.stringify(figures, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
  process.stderr.write(`[write-path] wrote ${file}\n`);
  return figures;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writePathMain(process.argv.slice(2)).catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
