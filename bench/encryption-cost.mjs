// What encrypting session data at rest costs on the no-cache path: two apps in one process on one
// database, the same build, encryption off and on, driven through Fastify's inject() one request
// at a time, interleaved request by request (order swapped every request), as route-cost.mjs does.
// Each app has its own 1,000 sessions holding the same data (the encrypted app's sealed per
// session). Routes: GET /me (read: lookup, decrypt, guard) and GET /write (a read plus one
// `patch` of one key: seal, merge in SQL, open the merged row). Prints µs per request and the
// on/off ratios.
//
//   npm run build && DATABASE_URL=postgres://... N=5000 node bench/encryption-cost.mjs
//   SAME=1 ...   both apps without encryption, on plain rows: the method's own spread
import 'reflect-metadata';
import { createSecretKey, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { BENCH_USER_AGENT, hashOf, seedSessions, tokenOf } from './seed.mjs';
const { NestFactory } = await import('@nestjs/core');
const { Controller, Get, Module, Req } = await import('@nestjs/common');
const { FastifyAdapter } = await import('@nestjs/platform-fastify');
const { TypeOrmModule } = await import('@nestjs/typeorm');

const root = resolve(import.meta.dirname, '..');
const load = (file) => import(pathToFileURL(`${root}/dist/src/${file}`).href);
const { runMigrations } = await load('demo/migrate.js');
const { SessionDataCipher } = await load('session/encryption/session-data-cipher.js');

if (!process.env.DATABASE_URL) throw new Error('set DATABASE_URL (a server where a scratch database may be created)');
const name = `nps_encryption_cost_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(process.env.DATABASE_URL);
url.pathname = `/${name}`;
await runMigrations(url.toString());

// Sessions 1..1000 for the plain app, 1001..2000 for the encrypted one; the same data in each.
const DATA = {
  role: 'user',
  locale: 'en-GB',
  cart: {
    items: [
      { sku: 'SKU-1001', quantity: 2 },
      { sku: 'SKU-2002', quantity: 1 },
    ],
    currency: 'EUR',
  },
  preferences: { theme: 'dark', newsletter: false },
};
const KEY = { id: '2026-12', key: createSecretKey(randomBytes(32)) };
const cipher = new SessionDataCipher([KEY]);
const pool = new pg.Pool({ connectionString: url.toString() });
await seedSessions(pool, 2000);
await pool.query('UPDATE user_sessions SET data = $1', [JSON.stringify(DATA)]);
const { rows } = await pool.query('SELECT id FROM user_sessions WHERE token_hash = ANY($1)', [
  Array.from({ length: 1000 }, (_, k) => hashOf(tokenOf(1001 + k))),
]);
const SAME = Boolean(process.env.SAME);
for (const { id } of SAME ? [] : rows)
  await pool.query('UPDATE user_sessions SET data = $2 WHERE id = $1', [id, JSON.stringify(cipher.seal(id, DATA))]);
await pool.query('VACUUM ANALYZE user_sessions');
const [{ bytes_plain, bytes_sealed }] = (
  await pool.query(
    `SELECT avg(octet_length(data::text)) FILTER (WHERE data->>'role' = 'user')::int AS bytes_plain,
            avg(octet_length(data::text)) FILTER (WHERE data->>'role' <> 'user')::int AS bytes_sealed FROM user_sessions`,
  )
).rows;
await pool.end();

async function startApp(label, encryption) {
  const { SessionModule, SessionService, sessionOf } = await load('session/index.js');
  class RoutesController {
    constructor(sessions) {
      this.sessions = sessions;
    }
    me(req) {
      return { userId: sessionOf(req).userId };
    }
    async write(req) {
      const data = await this.sessions.patch(sessionOf(req), { lastPage: `/p/${Math.random()}` });
      return { keys: Object.keys(data).length };
    }
  }
  const route = (method, path) => {
    const descriptor = Object.getOwnPropertyDescriptor(RoutesController.prototype, method);
    Get(path)(RoutesController.prototype, method, descriptor);
    Req()(RoutesController.prototype, method, 0);
  };
  route('me', 'me');
  route('write', 'write');
  Reflect.defineMetadata('design:paramtypes', [SessionService], RoutesController);
  Controller()(RoutesController);
  class EncryptionCostModule {}
  Module({
    imports: [
      TypeOrmModule.forRoot({
        name: label,
        type: 'postgres',
        url: url.toString(),
        autoLoadEntities: true,
        extra: { max: 20 },
      }),
      SessionModule.forRootAsync({
        useFactory: () => ({
          purge: { enabled: false },
          cache: { enabled: false },
          ...(encryption ? { encryption } : {}),
        }),
        dataSource: label,
      }),
    ],
    controllers: [RoutesController],
  })(EncryptionCostModule);
  const app = await NestFactory.create(EncryptionCostModule, new FastifyAdapter(), { logger: ['error'] });
  await app.init();
  const fastify = app.getHttpAdapter().getInstance();
  await fastify.ready();
  return { label, app, fastify, first: encryption ? 1001 : 1 };
}
const apps = [
  await startApp('off', undefined),
  SAME ? { ...(await startApp('off2', undefined)), first: 1001 } : await startApp('on', { keys: [KEY] }),
];

async function timed(app, path, i) {
  const started = performance.now();
  const response = await app.fastify.inject({
    method: 'GET',
    url: path,
    headers: { cookie: `__Host-sid=${tokenOf(app.first + (i % 1000))}`, 'user-agent': BENCH_USER_AGENT },
    remoteAddress: '127.0.0.1',
  });
  const micros = 1000 * (performance.now() - started);
  if (response.statusCode !== 200) throw new Error(`${app.label} ${path}: ${response.statusCode} ${response.body}`);
  return micros;
}
const routes = ['/me', '/write'];
const N = Number(process.env.N ?? 5000);
const times = apps.map(() => Object.fromEntries(routes.map((r) => [r, []])));
const pairs = apps.flatMap((app, a) => routes.map((path) => ({ app, a, path })));
for (let i = 0; i < 1000; i++) for (const p of pairs) await timed(p.app, p.path, i); // warm-up (JIT, pools)
for (let i = 0; i < N; i++)
  for (const p of i % 2 ? [...pairs].reverse() : pairs) times[p.a][p.path].push(await timed(p.app, p.path, i));

const at = (sorted, q) => sorted[Math.floor(q * (sorted.length - 1))];
const summaries = apps.map((app, a) => {
  const summary = {};
  for (const path of routes) {
    const sorted = times[a][path].sort((x, y) => x - y);
    const body = sorted.slice(0, Math.floor(sorted.length * 0.9)); // without the slowest 10% (GC, preemption)
    summary[path] = body.reduce((x, y) => x + y, 0) / body.length;
    console.log(
      `encryption ${app.label.padEnd(3)} ${path.padEnd(7)} µs/request: p50 ${at(sorted, 0.5).toFixed(1)}  mean below p90 ${summary[path].toFixed(1)}`,
    );
  }
  return summary;
});
console.log(`stored data: ${bytes_plain} bytes plain, ${bytes_sealed} bytes encrypted (4 keys)`);
console.log(`on / off: ${routes.map((r) => `${r} ${(summaries[1][r] / summaries[0][r]).toFixed(3)}`).join('  ')}`);
for (const app of apps) await app.app.close();
await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
await admin.end();
