// What a session adds to a request, without sockets or a load generator: a Nest app on
// Fastify (cache on unless CACHE=0), driven through Fastify's inject() one request at a time,
// routes interleaved request by request, so the machine's load falls on all of them alike.
// Prints wall time per request (µs) per route; /me minus /public-req is the session's cost
// (both handlers take @Req(), which Nest's parameter handling charges for).
//
// BUILDS compares builds side by side in one process: one app per build (a directory holding
// that build's dist/, e.g. made with `npx tsc -p tsconfig.build.json --outDir scratch/a/dist`),
// the apps interleaved request by request and their order swapped every request. Put the same
// build in twice to see the method's own spread.
//
//   npm run build && node bench/route-cost.mjs                        (N=20000 requests per route)
//   BUILDS=scratch/a,scratch/b,scratch/a N=10000 node bench/route-cost.mjs
//   DATABASE_URL=postgres://... node bench/route-cost.mjs             (a fresh database there, else embedded)
//   CACHE=0 FLOOD_LIMIT=0 ROUTES=/public-req,/me,/me#unknown node bench/route-cost.mjs
//
// `/me#unknown` is /me with a well-formed token no session has (401): what a guess or a
// stale token costs. FLOOD_LIMIT sets flood.limit (0 never blocks), else the default limit
// would answer 429 after 100 of them.
import 'reflect-metadata';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { BENCH_USER_AGENT, seedSessions, tokenOf } from './seed.mjs';
import { createScratchDatabase } from './scratch-database.mjs';
const { NestFactory } = await import('@nestjs/core');
const { Controller, Get, Module, Req } = await import('@nestjs/common');
const { FastifyAdapter } = await import('@nestjs/platform-fastify');
const { TypeOrmModule } = await import('@nestjs/typeorm');

const root = resolve(import.meta.dirname, '..');
const builds = (process.env.BUILDS ?? '.')
  .split(',')
  .map((dir, k) => ({ dir: resolve(root, dir), label: `${k}:${dir}` }));
const load = (build, file) => import(pathToFileURL(`${build.dir}/dist/src/${file}`).href);
const { runMigrations } = await load(builds[0], 'demo/migrate.js');

let db;
if (process.env.DATABASE_URL) {
  const scratch = await createScratchDatabase(process.env.DATABASE_URL, 'nps_route_cost');
  db = { url: scratch.url, stop: scratch.drop };
} else {
  db = await (await load(builds[0], 'demo/embedded-postgres.js')).startEmbeddedPostgres();
}
await runMigrations(db.url);
const seedPool = new pg.Pool({ connectionString: db.url });
await seedSessions(seedPool, 1000);
await seedPool.end();

/** One app on `build`'s dist: /public, /public-req (@Public, takes @Req()) and /me (guarded). */
async function startApp(build, k) {
  const { SessionModule, Public, sessionOf } = await load(build, 'session/index.js');
  class RoutesController {
    publicOk() {
      return { ok: true };
    }
    publicReq(req) {
      return { userId: req.headers['user-agent'] ? 'x' : null };
    }
    me(req) {
      return { userId: sessionOf(req).userId };
    }
  }
  const route = (name, decorators, withReq) => {
    const descriptor = Object.getOwnPropertyDescriptor(RoutesController.prototype, name);
    for (const decorate of decorators) decorate(RoutesController.prototype, name, descriptor);
    if (withReq) Req()(RoutesController.prototype, name, 0);
  };
  route('publicOk', [Get('public'), Public()]);
  route('publicReq', [Get('public-req'), Public()], true);
  route('me', [Get('me')], true);
  Controller()(RoutesController);
  class RouteCostModule {}
  const dataSource = `route_cost_${k}`; // TypeORM keeps a process-wide registry of names
  Module({
    imports: [
      TypeOrmModule.forRoot({
        name: dataSource,
        type: 'postgres',
        url: db.url,
        autoLoadEntities: true,
        extra: { max: 20 },
      }),
      SessionModule.forRootAsync({
        useFactory: () => ({
          purge: { enabled: false },
          cache: { enabled: process.env.CACHE !== '0' },
          ...(process.env.FLOOD_LIMIT ? { flood: { limit: Number(process.env.FLOOD_LIMIT) } } : {}),
        }),
        dataSource,
      }),
    ],
    controllers: [RoutesController],
  })(RouteCostModule);
  const app = await NestFactory.create(RouteCostModule, new FastifyAdapter(), { logger: ['error'] });
  await app.init();
  const fastify = app.getHttpAdapter().getInstance();
  await fastify.ready();
  return { ...build, app, fastify };
}
const apps = [];
for (const [k, build] of builds.entries()) apps.push(await startApp(build, k));
await new Promise((resolve) => setTimeout(resolve, 500)); // the caches' LISTEN connections

const cookies = Array.from({ length: 50 }, (_, k) => `__Host-sid=${tokenOf(k + 1)}`);
const unknownCookies = Array.from({ length: 50 }, (_, k) => `__Host-sid=${tokenOf(999_000_000 + k)}`); // never seeded
async function timed(app, route, k) {
  const [url, variant] = route.split('#');
  const started = performance.now();
  const response = await app.fastify.inject({
    method: 'GET',
    url,
    headers: { cookie: (variant === 'unknown' ? unknownCookies : cookies)[k % 50], 'user-agent': BENCH_USER_AGENT },
    remoteAddress: '127.0.0.1',
  });
  const micros = 1000 * (performance.now() - started);
  const expected = variant === 'unknown' ? 401 : 200;
  if (response.statusCode !== expected)
    throw new Error(`${app.label} ${route}: ${response.statusCode} ${response.body}`);
  return micros;
}
const routes = (process.env.ROUTES ?? '/public,/public-req,/me').split(',');
const times = apps.map(() => Object.fromEntries(routes.map((url) => [url, []])));
const N = Number(process.env.N ?? 20000);
const pairs = apps.flatMap((app, a) => routes.map((url) => ({ app, a, url })));
for (let i = 0; i < 3000; i++) for (const p of pairs) await timed(p.app, p.url, i); // warm-up (JIT, cache)
for (let i = 0; i < N; i++)
  for (const p of i % 2 ? [...pairs].reverse() : pairs) times[p.a][p.url].push(await timed(p.app, p.url, i));

const at = (sorted, q) => sorted[Math.floor(q * (sorted.length - 1))];
const summaries = apps.map((app, a) => {
  const summary = {};
  for (const url of routes) {
    const sorted = times[a][url].sort((x, y) => x - y);
    const body = sorted.slice(0, Math.floor(sorted.length * 0.9)); // without the slowest 10% (GC pauses, preemption)
    summary[url] = body.reduce((x, y) => x + y, 0) / body.length;
    console.log(
      `${apps.length > 1 ? `${app.label}  ` : ''}${url.padEnd(12)} µs/request: p25 ${at(sorted, 0.25).toFixed(1)}  p50 ${at(sorted, 0.5).toFixed(1)}  mean below p90 ${summary[url].toFixed(1)}`,
    );
  }
  if (summary['/me'] && summary['/public-req']) {
    console.log(
      `${apps.length > 1 ? `${app.label}  ` : ''}session cost (/me - /public-req, means below p90): ${(summary['/me'] - summary['/public-req']).toFixed(1)} µs; /me / /public ${(summary['/me'] / summary['/public']).toFixed(2)}`,
    );
  }
  return summary;
});
for (let a = 1; a < apps.length; a++) {
  const ratios = routes.map((url) => `${url} ${(summaries[a][url] / summaries[0][url]).toFixed(3)}`).join('  ');
  console.log(`${apps[a].label} / ${apps[0].label}: ${ratios}`);
}
for (const app of apps) await app.app.close();
await db.stop();
