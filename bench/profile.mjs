// Where does a route's time go? Starts an embedded PostgreSQL with 100,000 sessions, one
// bench/apps.js child, and drives the listed routes of its `ours` app (public, bare, me,
// diag/store, diag/validate) with autocannon (50 connections, 50 sessions) in ABBA order,
// printing req/s and the child's CPU µs per request for each. With PROF=1 the child runs
// under --cpu-prof and the self time is summarised by package and by function.
//
//   npm run build && node bench/profile.mjs fastify public,bare,diag/store,diag/validate,me
//   SECS=10 PROF=1 node bench/profile.mjs fastify me
//   BENCH_CACHE=1 APP=cached PROF=1 node bench/profile.mjs fastify me     (the cached app)
//   ROUNDS=3 SECS=4 node bench/profile.mjs fastify public,me                (3 ABBA rounds, then medians)
//   BUILDS=scratch/a,scratch/b ROUNDS=2 node bench/profile.mjs fastify me   (two builds side by side: one child
//       per build, each a directory holding that build's dist/; routes and builds interleaved ABBA)
import autocannon from 'autocannon';
import { fork } from 'node:child_process';
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../dist/src/demo/embedded-postgres.js';
import { runMigrations } from '../dist/src/demo/migrate.js';
import { BENCH_USER_AGENT, seedSessions, tokenOf } from './seed.mjs';
const [adapter, routes] = process.argv.slice(2);
const db = await startEmbeddedPostgres();
await runMigrations(db.url);
const pool = new pg.Pool({ connectionString: db.url });
await seedSessions(pool, 100000);
await pool.end();
const dir = `${new URL('../scratch/', import.meta.url).pathname}prof-${adapter}-${Date.now()}`;
mkdirSync(dir, { recursive: true });
const cookies = Array.from({ length: 50 }, (_, k) => `__Host-sid=${tokenOf(k + 1)}`);
const builds = (process.env.BUILDS ?? '').split(',').filter(Boolean);
const children = [];
for (const build of builds.length ? builds : ['']) {
  const child = fork(new URL('./apps.js', import.meta.url).pathname, [adapter], {
    execArgv: process.env.PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${process.env.PROF_INTERVAL ?? 1000}`]
      : [],
    env: {
      ...process.env,
      BENCH_CACHE: process.env.BENCH_CACHE ?? '0',
      BENCH_DATABASE_URL: db.url,
      ...(build ? { BENCH_DIST: resolve(build, 'dist') } : {}),
    },
  });
  const info = await new Promise((r) => child.on('message', (m) => m.ready && r(m)));
  children.push({ build, child, info, ask: (cmd) => ask(child, cmd) });
}
let id = 10;
const ask = (child, cmd) =>
  new Promise((r) => {
    const my = id++;
    const h = (m) => {
      if (m.id === my) {
        child.off('message', h);
        r(m);
      }
    };
    child.on('message', h);
    child.send({ id: my, cmd });
  });
const cpuOf = {};
const pairs = routes.split(',').flatMap((route) => children.map((c) => ({ route, c })));
const order = Array.from({ length: Number(process.env.ROUNDS ?? 1) }, () => [...pairs, ...[...pairs].reverse()]).flat();
for (const { route, c } of order) {
  const { info, ask } = c;
  const label = builds.length ? `${c.build}:${route}` : route;
  let n = 0;
  await autocannon({
    url: `http://127.0.0.1:${info.ports[process.env.APP ?? 'ours']}/${route}`,
    connections: 50,
    duration: 2,
    headers: { 'user-agent': BENCH_USER_AGENT },
    setupClient: (c) => c.setHeaders({ 'user-agent': BENCH_USER_AGENT, cookie: cookies[n++ % 50] }),
  });
  await new Promise((r) => setTimeout(r, 1000));
  await ask('reset');
  const res = await autocannon({
    url: `http://127.0.0.1:${info.ports[process.env.APP ?? 'ours']}/${route}`,
    connections: 50,
    duration: Number(process.env.SECS ?? 10),
    headers: { 'user-agent': BENCH_USER_AGENT },
    setupClient: (c) => c.setHeaders({ 'user-agent': BENCH_USER_AGENT, cookie: cookies[n++ % 50] }),
  });
  const { counts } = await ask('counts');
  console.log(
    label.padEnd(14),
    Math.round(res.requests.total / res.duration),
    'req/s',
    'non2xx',
    res.non2xx,
    'cpu µs/req',
    Math.round(counts.cpuMicros / counts.requests),
    'user',
    (counts.userMicros / counts.requests).toFixed(1),
    'sql',
    counts.reads + counts.writes,
    'heap MB',
    counts.heapMB,
  );
  (cpuOf[label] ??= []).push({
    cpu: counts.cpuMicros / counts.requests,
    user: counts.userMicros / counts.requests,
    rps: res.requests.total / res.duration,
  });
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const [route, runs] of Object.entries(cpuOf)) {
  console.log(
    'median',
    route.padEnd(14),
    Math.round(median(runs.map((r) => r.rps))),
    'req/s',
    'cpu µs/req',
    median(runs.map((r) => r.cpu)).toFixed(1),
    'user',
    median(runs.map((r) => r.user)).toFixed(1),
  );
}
for (const { child } of children) {
  child.send({ id: 1, cmd: 'stop' });
  await new Promise((r) => child.on('exit', r));
}
await db.stop();
if (!process.env.PROF) process.exit(0);
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
const prof = JSON.parse(readFileSync(`${dir}/${file}`));
const self = new Map();
const byPkg = new Map();
const dt = (prof.endTime - prof.startTime) / prof.samples.length / 1000;
const hits = new Map();
for (const s of prof.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
let total = 0;
for (const node of prof.nodes) {
  const h = hits.get(node.id) ?? 0;
  if (!h) continue;
  total += h;
  const { functionName, url, lineNumber } = node.callFrame;
  const key = `${functionName || '(anon)'} ${url.replace(/^.*node_modules\//, 'nm/').replace('', '')}:${lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + h);
  const pkg = url.includes('node_modules/')
    ? url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1')
    : url.includes('/dist/')
      ? 'nest-pg-session'
      : url.startsWith('node:')
        ? 'node:' + url.slice(5).split('/')[0]
        : url || functionName;
  byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + h);
}
const top = (m, k) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([n, h]) => `${((100 * h) / total).toFixed(1).padStart(5)}%  ${n}`)
    .join('\n');
console.log(
  `profile ${dir}/${file}, ${total} samples, ${dt.toFixed(2)} ms/sample\n-- by package --\n${top(byPkg, 20)}\n-- self, top 30 --\n${top(self, 30)}`,
);
