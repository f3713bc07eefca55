/* global fetch */
// Behind PgBouncer: the demo (dist/src/main.js, `npm run build` first) in 1 or 2 processes on a
// real PgBouncer (Debian's, test/support/pgbouncer.mjs) in transaction or session pooling mode,
// cache off or on. Per configuration: GET /me under load with autocannon (one session, 20
// connections per instance, DURATION s), its non-2xx count; a revoke on instance A, and how long
// until instance B (or A alone) refuses it; 2,000 expired rows and how long until the purge
// (cron every 2 s on every instance) has deleted them all. Transaction mode runs with
// SESSION_PREPARED_STATEMENTS=off (the setting), plus one row with it on for contrast.
//
//   node bench/pooler-bench.mjs                 every configuration, 5 s of load each
//   DURATION=10 node bench/pooler-bench.mjs
//
// Needs DATABASE_URL (or PostgreSQL at 127.0.0.1:5432) and pgbouncer. Prints a Markdown table.
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { runMigrations } from '../dist/src/demo/migrate.js';
import { startPgBouncer } from '../test/support/pgbouncer.mjs';
import { createScratchDatabase } from './scratch-database.mjs';

const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DURATION = Number(process.env.DURATION ?? 5);
const MAIN = new URL('../dist/src/main.js', import.meta.url).pathname;

const CONFIGS = [
  { mode: 'transaction', prepared: 'on', cache: 'off', instances: 1 },
  ...['transaction', 'session'].flatMap((mode) =>
    ['off', 'on'].flatMap((cache) =>
      [1, 2].map((instances) => ({ mode, prepared: mode === 'transaction' ? 'off' : 'on', cache, instances })),
    ),
  ),
];

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startDemo(env) {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, PORT: String(port), NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const url = `http://127.0.0.1:${port}`;
  for (const started = Date.now(); ; await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`demo exited:\n${output}`);
    if (Date.now() - started > 45_000) throw new Error(`demo did not start:\n${output}`);
    if (
      await fetch(`${url}/health`).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      break;
  }
  return {
    url,
    output: () => output,
    stop: () =>
      new Promise((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', resolve), child.kill()))),
  };
}

async function login(url, username) {
  const response = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: `${username}-password` }),
  });
  if (response.status !== 200) throw new Error(`login ${response.status}`);
  const cookie = response.headers
    .getSetCookie()
    .find((h) => h.startsWith('__Host-sid='))
    .split(';')[0];
  const body = await response.json();
  return { cookie, sessionId: body.sessionId, headers: { cookie, 'x-csrf-token': body.csrfToken } };
}

const load = (url, cookie) =>
  autocannon({ url: `${url}/me`, connections: 20, duration: DURATION, headers: { cookie } });

async function measure(config, bouncer) {
  const { name, url: direct, drop } = await createScratchDatabase(serverUrl, 'nps_pooler');
  await runMigrations(direct);
  const db = new pg.Pool({ connectionString: direct, max: 2 });
  db.on('error', () => undefined); // DROP ... WITH (FORCE) at the end may reach a closing idle client
  const demos = [];
  try {
    for (let i = 0; i < config.instances; i++)
      demos.push(
        await startDemo({
          DATABASE_URL: bouncer.url(name),
          HTTP_ADAPTER: 'express',
          SESSION_CACHE: config.cache,
          SESSION_PREPARED_STATEMENTS: config.prepared,
          PURGE_CRON: '*/2 * * * * *',
          AUDIT_RETENTION: 'forever',
          LOGIN_RATE_LIMIT: '0',
        }),
      );
    const health = await (await fetch(`${demos[0].url}/health`)).json();
    const { cookie } = await login(demos[0].url, 'alice');
    const results = await Promise.all(demos.map((d) => load(d.url, cookie)));
    const requests = results.reduce((n, r) => n + r.requests.total, 0);
    const non2xx = results.reduce((n, r) => n + r.non2xx + r.errors, 0);
    const codes = {};
    for (const r of results)
      for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {}))
        if (!code.startsWith('2')) codes[code] = (codes[code] ?? 0) + count;

    // Revoke on A; B (or A) answers 401 after how long (cache filled first).
    const [a, b] = [demos[0], demos.at(-1)];
    let revokeMs = 'n/a';
    try {
      const victim = await login(a.url, 'bob');
      const other = await login(a.url, 'bob');
      for (let i = 0; i < 3; i++) await fetch(`${b.url}/me`, { headers: { cookie: victim.cookie } });
      const revoked = await fetch(`${a.url}/sessions/${victim.sessionId}`, {
        method: 'DELETE',
        headers: other.headers,
      });
      const at = performance.now();
      if (revoked.status !== 204) throw new Error(`revoke ${revoked.status}`);
      for (;;) {
        const sent = performance.now();
        const status = (await fetch(`${b.url}/me`, { headers: { cookie: victim.cookie } })).status;
        if (status === 401) {
          revokeMs = `${Math.round(sent - at)} ms`;
          break;
        }
        if (sent - at > 10_000) {
          revokeMs = 'not within 10 s';
          break;
        }
        await sleep(2);
      }
    } catch (error) {
      revokeMs = `failed (${error.message})`;
    }

    // 2,000 expired rows; the purge ticks every 2 s on each instance.
    await db.query(`INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
      SELECT sha256(('x' || g)::bytea), 'x-' || g, now() - interval '1 minute', now() + interval '1 hour'
      FROM generate_series(1, 2000) g`);
    const seeded = performance.now();
    let purge = 'rows left after 30 s';
    for (;;) {
      const { rows } = await db.query(
        `SELECT count(*)::int AS n FROM user_sessions WHERE idle_expires_at <= now() OR absolute_expires_at <= now()`,
      );
      if (rows[0].n === 0) {
        purge = `2,000 deleted in ${(Math.round(performance.now() - seeded) / 1000).toFixed(1)} s`;
        break;
      }
      if (performance.now() - seeded > 30_000) {
        purge = `${rows[0].n} of 2,000 left after 30 s`;
        break;
      }
      await sleep(100);
    }
    const failedRuns = demos.reduce((n, d) => n + (d.output().match(/purge run failed/g) ?? []).length, 0);
    return {
      ...config,
      requests,
      non2xx,
      codes,
      cacheHealth: health.details?.session?.cache?.status,
      revokeMs,
      purge: failedRuns ? `${purge}; ${failedRuns} failed runs` : purge,
    };
  } finally {
    await Promise.all(demos.map((d) => d.stop()));
    await db.end();
    await drop();
  }
}

const rows = [];
for (const mode of ['transaction', 'session']) {
  const bouncer = await startPgBouncer({ serverUrl, poolMode: mode });
  try {
    for (const config of CONFIGS.filter((c) => c.mode === mode)) {
      console.error(`[pooler bench] ${JSON.stringify(config)}`);
      const row = await measure(config, bouncer);
      console.error(`[pooler bench]   ${JSON.stringify(row)}`);
      rows.push(row);
    }
  } finally {
    await bouncer.stop();
  }
}
console.log(
  '| pooling | preparedStatements | cache | instances | GET /me under load: non-2xx of total | listener | revoke refused by the other instance after | purge of 2,000 expired rows |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.mode} | ${r.prepared} | ${r.cache} | ${r.instances} | ${r.non2xx.toLocaleString('en')} of ${r.requests.toLocaleString('en')}` +
      `${
        Object.keys(r.codes).length
          ? ` (${Object.entries(r.codes)
              .map(([c, n]) => `${n}× ${c}`)
              .join(', ')})`
          : ''
      }` +
      ` | ${r.cacheHealth} | ${r.revokeMs} | ${r.purge} |`,
  );
