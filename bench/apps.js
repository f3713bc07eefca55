// Child process of bench/run.js: hosts the benchmark's Nest apps on ONE adapter (argv[2]:
// 'express' or 'fastify'), each app on its own port, and counts every SQL statement sent
// through `pg` (all of them: TypeORM's pool, the bare route, connect-pg-simple).
//
// The parent talks to it over IPC: { cmd: 'reset' } zeroes the counters, { cmd: 'counts' }
// returns them, { cmd: 'stop' } closes the apps. It sends { ready: true, ports, peer } once
// listening.
//
// Apps:
//   ours     /public  (a) @Public, returns {ok:true}: no session work at all
//            /bare    (b) @Public, reads the cookie, SHA-256, one `pg` SELECT by token hash on
//                         user_sessions (the store's own lookup SQL) on the same pool: the floor
//            /me      (c) guarded by SessionModule's global SessionGuard (no cache), returns userId
//   cached   /me      (d) the same with `cache: { enabled: true }` (with BENCH_CACHE=1, as run.js sets)
//   peer     /me      (e) express-session + connect-pg-simple (resave:false, saveUninitialized:false)
import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

// The build under test: BENCH_DIST (a dist/ directory, for side-by-side runs of two builds) or ../dist.
const DIST = process.env.BENCH_DIST
  ? pathToFileURL(process.env.BENCH_DIST).href
  : new URL('../dist', import.meta.url).href;

// ---- the SQL counter: installed before anything creates a pg client --------------------
const counts = { requests: 0, reads: 0, writes: 0, other: 0 };
let writeKinds = {};
let cpuBase = process.cpuUsage();
const WRITE = /\b(INSERT|UPDATE|DELETE|MERGE)\b/i;
const READ = /^\s*(\(\s*)?(SELECT|WITH|VALUES|TABLE|SHOW)\b/i;
const originalQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function countedQuery(config, values, callback) {
  const text = typeof config === 'string' ? config : config?.text;
  if (typeof text === 'string') {
    if (WRITE.test(text)) {
      counts.writes++;
      // Which writes: the prepared statement's name, else its first words.
      const kind = config?.name ?? text.trim().replace(/\s+/g, ' ').slice(0, 48);
      writeKinds[kind] = (writeKinds[kind] ?? 0) + 1;
    } else if (READ.test(text)) counts.reads++;
    else counts.other++; // BEGIN, COMMIT, SET ...: none on the measured paths, but counted if they appear
  }
  return originalQuery.call(this, config, values, callback);
};

const { Controller, Get, Module, Req, Res, Inject, UnauthorizedException } = await import('@nestjs/common');
const { NestFactory } = await import('@nestjs/core');
const { ExpressAdapter } = await import('@nestjs/platform-express');
const { FastifyAdapter } = await import('@nestjs/platform-fastify');
const { TypeOrmModule, getDataSourceToken } = await import('@nestjs/typeorm');
const { parseCookie } = await import('cookie');
const session = (await import('express-session')).default;
const connectPgSimple = (await import('connect-pg-simple')).default;
const { loadSessionLib } = await import('./session-lib.mjs');
const { SessionModule, Public, sessionOf, hashToken, SESSION_SQL, SessionStore, SessionValidator } =
  await loadSessionLib(DIST);
const { freePort } = await import(`${DIST}/src/demo/embedded-postgres.js`);

const adapterName = process.argv[2];
const databaseUrl = process.env.BENCH_DATABASE_URL;
const withCache = process.env.BENCH_CACHE === '1';
const POOL_MAX = 20; // the demo's pool size, for every app
export const COOKIE = '__Host-sid'; // the module's default cookie name
const PEER_SECRET = process.env.BENCH_PEER_SECRET ?? 'bench-secret';

/** Applies decorators by hand: this file is plain JS, run without a compiler. */
function decorateMethod(cls, name, decorators, { req = false } = {}) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, name);
  for (const d of decorators) d(cls.prototype, name, descriptor);
  if (req) Req()(cls.prototype, name, 0);
}

function oursModule(cache) {
  class BenchController {
    constructor(dataSource, store, validator) {
      this.pool = dataSource.driver.master;
      this.store = store;
      this.validator = validator;
    }
    publicOk() {
      return { ok: true };
    }
    async bare(req) {
      const header = req.headers.cookie;
      const token = header ? parseCookie(header)[COOKIE] : undefined;
      if (!token) throw new UnauthorizedException();
      const { rows } = await this.pool.query({
        name: 'nps_bare',
        text: SESSION_SQL.lookupByTokenHash.text,
        values: [hashToken(token)],
      });
      if (rows.length === 0) throw new UnauthorizedException();
      return { userId: rows[0].user_id };
    }
    me(req) {
      return { userId: sessionOf(req).userId };
    }
    // Diagnostics (not in the table; for locating the cost between /public, /bare and /me):
    // /diag/public-req: /public with a @Req() parameter like /me (Nest's parameter handling);
    // /diag/store: the store's lookup (its timeout race, row mapping) instead of pool.query;
    // /diag/validate: SessionValidator.validate() called in the handler, without the guards.
    async diagStore(req) {
      const token = parseCookie(req.headers.cookie ?? '')[COOKIE];
      const row = token && (await this.store.lookupByTokenHash(hashToken(token)));
      if (!row) throw new UnauthorizedException();
      return { userId: row.userId };
    }
    diagPublicReq(req) {
      return { userId: req.headers['user-agent'] === undefined ? null : 'x' };
    }
    async diagValidate(req, res) {
      const outcome = await this.validator.validate(req, res);
      if (!outcome.ok) throw new UnauthorizedException();
      return { userId: outcome.session.userId };
    }
  }
  // Each app in this process gets its own named DataSource (TypeORM keeps a process-wide name registry).
  const dataSourceName = cache ? 'bench_cached' : 'bench_ours';
  Inject(getDataSourceToken(dataSourceName))(BenchController, undefined, 0);
  Inject(SessionStore)(BenchController, undefined, 1);
  Inject(SessionValidator)(BenchController, undefined, 2);
  decorateMethod(BenchController, 'publicOk', [Get('public'), Public()]);
  decorateMethod(BenchController, 'bare', [Get('bare'), Public()], { req: true });
  decorateMethod(BenchController, 'me', [Get('me')], { req: true });
  decorateMethod(BenchController, 'diagStore', [Get('diag/store'), Public()], { req: true });
  decorateMethod(BenchController, 'diagPublicReq', [Get('diag/public-req'), Public()], { req: true });
  decorateMethod(BenchController, 'diagValidate', [Get('diag/validate'), Public()], { req: true });
  Res({ passthrough: true })(BenchController.prototype, 'diagValidate', 1);
  Controller()(BenchController);

  class OursModule {}
  Module({
    imports: [
      TypeOrmModule.forRoot({
        name: dataSourceName,
        type: 'postgres',
        url: databaseUrl,
        autoLoadEntities: true,
        synchronize: false,
        logging: false,
        extra: { max: POOL_MAX, connectionTimeoutMillis: 10_000 },
      }),
      // forRootAsync: with forRoot, the `dataSource` extra reaches the options validator, which rejects it.
      SessionModule.forRootAsync({
        useFactory: () => ({ purge: { enabled: false }, ...(cache ? { cache: { enabled: true } } : {}) }),
        dataSource: dataSourceName,
      }),
    ],
    controllers: [BenchController],
  })(OursModule);
  return OursModule;
}

function peerModule() {
  class PeerController {
    me(req) {
      const s = req.session ?? req.raw?.session;
      if (!s?.userId) throw new UnauthorizedException();
      return { userId: s.userId };
    }
  }
  decorateMethod(PeerController, 'me', [Get('me')], { req: true });
  Controller()(PeerController);
  class PeerModule {}
  Module({ controllers: [PeerController] })(PeerModule);
  return PeerModule;
}

function makeAdapter() {
  return adapterName === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
}

async function start(module, setup) {
  const app = await NestFactory.create(module, makeAdapter(), { logger: ['error', 'warn'], abortOnError: false });
  if (setup) await setup(app);
  await app.init();
  if (adapterName === 'fastify') await app.getHttpAdapter().getInstance().ready();
  const port = await freePort();
  await app.listen(port, '127.0.0.1');
  // Server-side request count: the denominator of SQL per request, over the same window as the SQL counts.
  app.getHttpServer().on('request', () => {
    counts.requests++;
  });
  return { app, port };
}

const apps = [];
const ports = {};
const ours = await start(oursModule(false));
apps.push(ours.app);
ports.ours = ours.port;

if (withCache) {
  const cached = await start(oursModule(true));
  apps.push(cached.app);
  ports.cached = cached.port;
}

// The peer: express-session + connect-pg-simple, its own pool of the same size.
let peer = { ok: true, note: '' };
const peerPool = new pg.Pool({ connectionString: databaseUrl, max: POOL_MAX });
try {
  const PgStore = connectPgSimple(session);
  const store = new PgStore({
    pool: peerPool,
    tableName: 'session',
    pruneSessionInterval: false,
    createTableIfMissing: false,
  });
  const middleware = session({
    store,
    secret: PEER_SECRET,
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 30 * 60_000, secure: false, httpOnly: true, sameSite: 'lax' },
  });
  const started = await start(peerModule(), async (app) => {
    // Express: plain middleware. Fastify: Nest routes app.use() through @fastify/middie.
    app.use(middleware);
  });
  apps.push(started.app);
  ports.peer = started.port;
  if (adapterName === 'fastify') peer.note = 'express-session via Nest FastifyAdapter.use() (@fastify/middie)';
} catch (error) {
  peer = { ok: false, note: `peer failed to start on ${adapterName}: ${error.message}` };
}

process.on('message', async (message) => {
  if (message.cmd === 'reset') {
    counts.requests = 0;
    counts.reads = 0;
    counts.writes = 0;
    counts.other = 0;
    writeKinds = {};
    cpuBase = process.cpuUsage();
    process.send({ id: message.id, counts: { ...counts } });
  } else if (message.cmd === 'counts') {
    // This process's CPU time (user + system, µs) since the reset: the app's cost per request, whatever the machine's load.
    const cpu = process.cpuUsage(cpuBase);
    process.send({
      id: message.id,
      counts: {
        ...counts,
        writeKinds,
        cpuMicros: cpu.user + cpu.system,
        userMicros: cpu.user,
        heapMB: (globalThis.gc?.(), Math.round(process.memoryUsage().heapUsed / 1048576)),
      },
    });
  } else if (message.cmd === 'stop') {
    for (const app of apps) await app.close().catch(() => undefined);
    await peerPool.end().catch(() => undefined);
    process.send({ id: message.id, stopped: true });
    process.exit(0);
  }
});

process.send({ ready: true, ports, peer, pid: process.pid, node: process.version });
