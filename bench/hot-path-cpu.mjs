// Where the hot path's CPU goes, without HTTP: this process's CPU µs per operation for
// the bare `pg` lookup, the store's lookup and SessionValidator.validate(), 50 concurrent
// callers, 6 ABBA rounds against an embedded PostgreSQL.
// Less noisy than req/s: Postgres runs in another process, so its CPU is not counted.
//
//   npm run build && node bench/hot-path-cpu.mjs     (KINDS=bare,store,validate to choose; CACHE=1 for the cached validator)
import 'reflect-metadata';
import pg from 'pg';
import { BENCH_USER_AGENT, seedSessions, tokenOf } from './seed.mjs';
const { NestFactory } = await import('@nestjs/core');
const { Module } = await import('@nestjs/common');
const { TypeOrmModule, getDataSourceToken } = await import('@nestjs/typeorm');
const { parseCookie } = await import('cookie');
const { loadSessionLib } = await import('./session-lib.mjs');
const { SessionModule, hashToken, SESSION_SQL, SessionStore, SessionValidator } = await loadSessionLib(
  new URL('../dist', import.meta.url).pathname,
);
const { startEmbeddedPostgres } = await import('../dist/src/demo/embedded-postgres.js');
const { runMigrations } = await import('../dist/src/demo/migrate.js');
const db = await startEmbeddedPostgres();
const url = db.url;
await runMigrations(url);
const p0 = new pg.Pool({ connectionString: url });
await seedSessions(p0, 1000);
await p0.end();
const cache = process.env.CACHE === '1';
class M {}
Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url, autoLoadEntities: true, extra: { max: 20 } }),
    SessionModule.forRoot({ purge: { enabled: false }, ...(cache ? { cache: { enabled: true } } : {}) }),
  ],
})(M);
const app = await NestFactory.createApplicationContext(M, { logger: ['error'] });
const ds = app.get(getDataSourceToken());
const pool = ds.driver.master;
const store = app.get(SessionStore);
const validator = app.get(SessionValidator);
const reqs = Array.from({ length: 50 }, (_, k) => ({
  headers: { cookie: `__Host-sid=${tokenOf(k + 1)}`, 'user-agent': BENCH_USER_AGENT },
  ip: '127.0.0.1',
}));
const res = {
  headers: {},
  append() {},
  setHeader(n, v) {
    this.headers[n] = v;
  },
};
const q = (t) => ({ name: 'nps_bare', text: SESSION_SQL.lookupByTokenHash.text, values: [hashToken(t)] });
const tok = (r) => parseCookie(r.headers.cookie)['__Host-sid'];
const kinds = {
  bare: async (r) => {
    const { rows } = await pool.query(q(tok(r)));
    if (!rows.length) throw 0;
  },
  store: async (r) => {
    const row = await store.lookupByTokenHash(hashToken(tok(r)));
    if (!row) throw 0;
  },
  // A fresh request object per call: the module keeps per-request state in WeakMaps keyed by it.
  validate: async (r) => {
    const o = await validator.validate({ ...r }, res);
    if (!o.ok) throw new Error(o.reason);
  },
};
async function run(fn, ms) {
  let n = 0;
  const end = Date.now() + ms;
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: 50 }, async (_, k) => {
      while (Date.now() < end) {
        await fn(reqs[k]);
        n++;
      }
    }),
  );
  const c = process.cpuUsage(c0);
  return { n, us: (c.user + c.system) / n };
}
const order = (process.env.KINDS ?? 'bare,store,validate').split(',');
const acc = Object.fromEntries(order.map((k) => [k, []]));
for (const k of order) await run(kinds[k], 500);
for (let round = 0; round < 6; round++)
  for (const k of round % 2 ? [...order].reverse() : order) acc[k].push((await run(kinds[k], 1500)).us);
for (const k of order) {
  const s = acc[k].sort((a, b) => a - b);
  console.log(
    k.padEnd(9),
    'cpu µs/op median',
    s[3].toFixed(1),
    'min',
    s[0].toFixed(1),
    'all',
    s.map((x) => x.toFixed(0)).join(' '),
  );
}
await app.close();
await db.stop();
