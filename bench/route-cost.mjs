// What a session adds to a request, without sockets or a load generator: one Nest app on
// Fastify (cache on unless CACHE=0), driven through Fastify's inject() one request at a time,
// routes interleaved request by request, so the machine's load falls on all of them alike.
// Prints wall time per request (µs) per route; /me minus /public-req is the session's cost
// (both handlers take @Req(), which Nest's parameter handling charges for).
//
//   npm run build && node bench/route-cost.mjs            (N=20000 requests per route)
import 'reflect-metadata';
import pg from 'pg';
import { BENCH_USER_AGENT, seedSessions, tokenOf } from './seed.mjs';
const { NestFactory } = await import('@nestjs/core');
const { Controller, Get, Module, Req } = await import('@nestjs/common');
const { FastifyAdapter } = await import('@nestjs/platform-fastify');
const { TypeOrmModule } = await import('@nestjs/typeorm');
const { SessionModule, Public, sessionOf } = await import('../dist/src/session/index.js');
const { startEmbeddedPostgres } = await import('../dist/src/demo/embedded-postgres.js');
const { runMigrations } = await import('../dist/src/demo/migrate.js');

const db = await startEmbeddedPostgres();
await runMigrations(db.url);
const seedPool = new pg.Pool({ connectionString: db.url });
await seedSessions(seedPool, 1000);
await seedPool.end();

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
Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url: db.url, autoLoadEntities: true, extra: { max: 20 } }),
    SessionModule.forRoot({ purge: { enabled: false }, cache: { enabled: process.env.CACHE !== '0' } }),
  ],
  controllers: [RoutesController],
})(RouteCostModule);
const app = await NestFactory.create(RouteCostModule, new FastifyAdapter(), { logger: ['error'] });
await app.init();
const fastify = app.getHttpAdapter().getInstance();
await fastify.ready();
await new Promise((resolve) => setTimeout(resolve, 500)); // the cache's LISTEN connection

const cookies = Array.from({ length: 50 }, (_, k) => `__Host-sid=${tokenOf(k + 1)}`);
async function timed(url, k) {
  const started = performance.now();
  const response = await fastify.inject({
    method: 'GET',
    url,
    headers: { cookie: cookies[k % 50], 'user-agent': BENCH_USER_AGENT },
    remoteAddress: '127.0.0.1',
  });
  const micros = 1000 * (performance.now() - started);
  if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body}`);
  return micros;
}
const routes = (process.env.ROUTES ?? '/public,/public-req,/me').split(',');
const times = Object.fromEntries(routes.map((url) => [url, []]));
const N = Number(process.env.N ?? 20000);
for (let i = 0; i < 3000; i++) for (const url of routes) await timed(url, i); // warm-up (JIT, cache)
for (let i = 0; i < N; i++)
  for (const url of i % 2 ? [...routes].reverse() : routes) times[url].push(await timed(url, i));

const at = (sorted, q) => sorted[Math.floor(q * (sorted.length - 1))];
const summary = {};
for (const url of routes) {
  const sorted = times[url].sort((a, b) => a - b);
  const body = sorted.slice(0, Math.floor(sorted.length * 0.9)); // without the slowest 10% (GC pauses, preemption)
  summary[url] = body.reduce((a, b) => a + b, 0) / body.length;
  console.log(
    `${url.padEnd(12)} µs/request: p25 ${at(sorted, 0.25).toFixed(1)}  p50 ${at(sorted, 0.5).toFixed(1)}  mean below p90 ${summary[url].toFixed(1)}`,
  );
}
if (summary['/me'] && summary['/public-req']) {
  console.log(
    `session cost (/me - /public-req, means below p90): ${(summary['/me'] - summary['/public-req']).toFixed(1)} µs; /me / /public ${(summary['/me'] / summary['/public']).toFixed(2)}`,
  );
}
await app.close();
await db.stop();
