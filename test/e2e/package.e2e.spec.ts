import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { quickStartApp, quickStartBlocks } from '../support/readme-quick-start.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const run = (command: string, args: string[], cwd: string) =>
  execFileSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

const devVersion = (name: string): string =>
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> })
    .devDependencies[name];

/** The tsconfig `nest new --strict` writes (Nest 12's ESM template, `strict` filled in as the CLI does). */
function nestStrictTsconfig(): { tsconfig: string; build: string } {
  const template = join(ROOT, 'node_modules/@nestjs/schematics/dist/lib/application/files/ts-esm');
  const render = (file: string) =>
    readFileSync(join(template, file), 'utf8')
      .replaceAll('<%= strict %>', 'true')
      .replaceAll('<%= specFileSuffix %>', 'spec')
      // The generated app's tests run on vitest, which this app has no use for.
      .replace('"vitest/globals", ', '');
  const tsconfig = render('tsconfig.json');
  if (tsconfig.includes('<%') || !/"strict": true/.test(tsconfig) || !/"isolatedModules": true/.test(tsconfig))
    throw new Error(`Nest's tsconfig template changed: ${tsconfig}`);
  return { tsconfig, build: render('tsconfig.build.json') };
}

const freePort = async (): Promise<number> => {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
};

const cookieNamed = (response: Response, name: string): string | undefined =>
  response.headers.getSetCookie().find((cookie) => cookie.startsWith(`${name}=`));

/** What a user gets from the registry: `npm pack`, installed into a scratch Nest app that boots on it. */
describe('the published package', () => {
  let scratch: string;
  let tarball: string;
  let files: string[];
  let db: TestDatabase;
  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'nps-pack-'));
    // dist/ is already built by `npm test`; skip prepack's rebuild.
    const [packed] = JSON.parse(
      run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], ROOT),
    );
    tarball = join(scratch, packed.filename);
    files = packed.files.map((f: { path: string }) => f.path);
    db = await createTestDatabase();
    writeFileSync(
      join(scratch, 'package.json'),
      JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }),
    );
    // The README's install line, plus what `nest new` already gave the app (Express, its types,
    // @types/node) and @nestjs/config for the forRootAsync recipe. The versions this repository
    // tests with come from npm's cache (--prefer-offline), so the registry is rarely asked.
    run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        tarball,
        '@nestjs/common@12',
        '@nestjs/core@12',
        '@nestjs/platform-express@12',
        '@nestjs/typeorm@12',
        '@nestjs/schedule@12',
        'typeorm@1',
        'pg@8',
        'cron@4',
        'class-validator',
        'class-transformer',
        'reflect-metadata',
        'rxjs',
        `@nestjs/config@${devVersion('@nestjs/config')}`,
        `@types/express@${devVersion('@types/express')}`,
        `@types/node@${devVersion('@types/node')}`,
      ],
      scratch,
    );
  }, 240_000);
  /** A database with no tables, beside the test's own, for an app or a command that must create them. */
  interface EmptyDatabase {
    url: string;
    drop(): Promise<void>;
  }
  async function emptyDatabase(purpose: string): Promise<EmptyDatabase> {
    const name = `nps_${purpose}_${process.pid}_${Date.now()}`;
    await db.pool.query(`CREATE DATABASE ${name}`);
    const url = new URL(db.url);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      drop: async () => void (await db.pool.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
    };
  }
  afterAll(async () => {
    rmSync(scratch, { recursive: true, force: true });
    await db?.drop();
  });

  it('holds the compiled library, its types, the migrations, the README, SECURITY.md and docs/, and no tests or demo', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'SECURITY.md',
        'LICENSE',
        'docs/options.md',
        'docs/nest-ecosystem.md',
        'docs/scaling.md',
        'dist/src/session/index.js',
        'dist/src/session/index.d.ts',
        'dist/migrations/index.js',
        'dist/src/session/health/index.js',
        'dist/src/session/health/index.d.ts',
        'dist/src/session/testing/index.js',
        'dist/src/session/testing/index.d.ts',
      ]),
    );
    expect(
      files.filter((f) => /^(test|src|bench|\.ci)\/|dist\/src\/demo|dist\/src\/main|embedded-postgres|\.env/.test(f)),
    ).toEqual([]);
  });

  it('installs into a scratch app that boots with the module, runs the migrations and guards its routes', async () => {
    // Plain JavaScript, decorators applied by hand: no build step between the user and the package.
    writeFileSync(
      join(scratch, 'main.js'),
      `
      import 'reflect-metadata';
      import { Controller, Get, Module } from '@nestjs/common';
      import { NestFactory } from '@nestjs/core';
      import { TypeOrmModule } from '@nestjs/typeorm';
      import { Public, SessionModule, sessionMigrations } from 'nest-pg-session';

      class HelloController { open() { return { open: true }; } closed() { return { closed: true }; } }
      Controller()(HelloController);
      for (const [name, decorators] of [['open', [Public(), Get('open')]], ['closed', [Get('closed')]]]) {
        const descriptor = Object.getOwnPropertyDescriptor(HelloController.prototype, name);
        for (const decorate of decorators) decorate(HelloController.prototype, name, descriptor);
      }
      class AppModule {}
      Module({
        imports: [
          TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, migrations: sessionMigrations, migrationsRun: true }),
          SessionModule.forRoot({ idleTimeout: '10m' }),
        ],
        controllers: [HelloController],
      })(AppModule);

      const app = await NestFactory.create(AppModule, { logger: false });
      await app.listen(0, '127.0.0.1');
      const base = 'http://127.0.0.1:' + app.getHttpServer().address().port;
      const open = await fetch(base + '/open');
      const closed = await fetch(base + '/closed');
      // The Terminus entry needs its optional peer, which this app did not install.
      const health = await import('nest-pg-session/health').then(() => 'loaded', (e) => e.code + ' ' + e.message.includes('@nestjs/terminus'));
      // The test helpers: their own entry, absent from the main one.
      const { createTestSession } = await import('nest-pg-session/testing');
      const session = await createTestSession(app, { userId: 'u-1' });
      const testing = { status: (await fetch(base + '/closed', { headers: session.headers() })).status, inMain: 'createTestSession' in (await import('nest-pg-session')) };
      console.log(JSON.stringify({ open: open.status, closed: closed.status, reason: (await closed.json()).reason, health, testing }));
      await app.close();
    `,
    );
    const output = execFileSync(process.execPath, ['main.js'], {
      cwd: scratch,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '', DATABASE_URL: db.url },
    });
    expect(JSON.parse(output.trim().split('\n').pop()!)).toEqual({
      open: 200,
      closed: 401,
      reason: 'missing',
      health: 'ERR_MODULE_NOT_FOUND true',
      testing: { status: 200, inMain: false },
    });
    // Optional peers (peerDependenciesMeta): npm installs neither, and the main entry works without them.
    expect(existsSync(join(scratch, 'node_modules/@nestjs/terminus'))).toBe(false);
    expect(existsSync(join(scratch, 'node_modules/prom-client'))).toBe(false);
    const { rows } = await db.pool.query(
      `SELECT to_regclass('user_sessions') AS sessions, to_regclass('session_audit_log') AS audit`,
    );
    expect(rows[0]).toEqual({ sessions: 'user_sessions', audit: 'session_audit_log' });
  }, 180_000);

  /**
   * The quick start as a user copies it: README.md's marked blocks (and the forRootAsync variant
   * in docs/), written into an app with the tsconfig `nest new --strict` generates, compiled with
   * tsc, booted on an empty database (so its own migrations config must create the tables), then
   * used over HTTP as a browser would: log in, read /me, log out.
   */
  describe('the README quick start', () => {
    let emptyDb: EmptyDatabase;
    beforeAll(async () => void (emptyDb = await emptyDatabase('quick_start')));
    afterAll(async () => emptyDb?.drop());

    /** Writes the variant's files into a fresh app directory and compiles it with tsc; returns the directory. */
    function buildQuickStart(variant: string): string {
      const app = join(scratch, variant.replace(/\W+/g, '-'));
      const { tsconfig, build } = nestStrictTsconfig();
      mkdirSync(app);
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'quick-start', private: true, type: 'module' }));
      writeFileSync(join(app, 'tsconfig.json'), tsconfig);
      writeFileSync(join(app, 'tsconfig.build.json'), build);
      for (const [path, code] of quickStartApp(quickStartBlocks(), variant)) {
        mkdirSync(dirname(join(app, path)), { recursive: true });
        writeFileSync(join(app, path), code);
      }
      try {
        run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], app);
      } catch (error) {
        const { stdout, stderr } = error as { stdout?: string; stderr?: string };
        throw new Error(`the ${variant} does not compile under nest new --strict:\n${stdout}${stderr}`, {
          cause: error,
        });
      }
      return app;
    }

    /** Boots the compiled app (`node dist/main.js`, as `npm run start:prod` does) and waits until it answers. */
    async function start(app: string, env: Record<string, string> = {}) {
      const port = await freePort();
      const child = spawn(process.execPath, ['dist/main.js'], {
        cwd: app,
        env: { ...process.env, NODE_OPTIONS: '', DATABASE_URL: emptyDb.url, PORT: String(port), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`the quick start exited with ${child.exitCode}:\n${output}`);
        const answered = await fetch(`${base}/me`).then(
          () => true,
          () => false,
        );
        if (answered) break;
        if (Date.now() > deadline) throw new Error(`the quick start did not answer within 30 s:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return {
        base,
        output: () => output,
        stop: async () => {
          if (child.exitCode === null && child.kill('SIGTERM')) await once(child, 'exit');
        },
      };
    }

    /** Log in, read /me, log out, as the README's curl lines do; the session cookie is `cookieName`. */
    async function loginMeLogout(base: string, cookieName: string) {
      const login = (body: object) =>
        fetch(`${base}/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      // The global ValidationPipe applies LoginDto's rules.
      expect((await login({ username: 'alice' })).status).toBe(400);
      expect((await login({ username: 'alice', password: 'alice-password', admin: true })).status).toBe(400);
      expect((await login({ username: 'alice', password: 'wrong' })).status).toBe(401);

      const loggedIn = await login({ username: 'alice', password: 'alice-password' });
      expect(loggedIn.status).toBe(201);
      const body = (await loggedIn.json()) as { userId: string; csrfToken: string };
      expect(body.userId).toBe('1');
      const setCookie = cookieNamed(loggedIn, cookieName);
      expect(setCookie).toMatch(/; HttpOnly/);
      const cookie = setCookie!.split(';')[0];

      expect((await fetch(`${base}/me`)).status).toBe(401);
      const me = await fetch(`${base}/me`, { headers: { cookie } });
      expect({ status: me.status, body: await me.json() }).toEqual({ status: 200, body: { userId: '1' } });

      // Logout is an unsafe request: without the CSRF token it is refused and the session lives on.
      expect((await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } })).status).toBe(403);
      const logout = await fetch(`${base}/logout`, {
        method: 'POST',
        headers: { cookie, 'x-csrf-token': body.csrfToken },
      });
      expect(logout.status).toBe(204);
      expect(cookieNamed(logout, cookieName)).toMatch(/Max-Age=0/);
      expect((await fetch(`${base}/me`, { headers: { cookie } })).status).toBe(401);
      return setCookie!;
    }

    it('compiles under nest new --strict, creates its tables, and logs in, reads /me and logs out', async () => {
      const app = await start(buildQuickStart('quick-start'));
      try {
        const setCookie = await loginMeLogout(app.base, '__Host-sid');
        expect(setCookie).toMatch(/; Secure/);
      } catch (error) {
        throw new Error(`${(error as Error).message}\n--- app output:\n${app.output()}`, { cause: error });
      } finally {
        await app.stop();
      }
      // Its own TypeORM config ran sessionMigrations on the empty database.
      const client = new pg.Client({ connectionString: emptyDb.url });
      await client.connect();
      try {
        const { rows } = await client.query(
          `SELECT to_regclass('user_sessions') AS sessions, to_regclass('session_audit_log') AS audit`,
        );
        expect(rows[0]).toEqual({ sessions: 'user_sessions', audit: 'session_audit_log' });
      } finally {
        await client.end();
      }
    }, 120_000);

    it('the forRootAsync app.module.ts compiles and runs the same flow, with the development cookie switch', async () => {
      const dir = buildQuickStart('quick-start forRootAsync');
      for (const [env, cookieName, secure] of [
        [{}, '__Host-sid', true],
        [{ SESSION_DEV_PLAIN_HTTP: 'true' }, 'sid', false],
      ] as const) {
        const app = await start(dir, env);
        try {
          const setCookie = await loginMeLogout(app.base, cookieName);
          expect(/; Secure/.test(setCookie)).toBe(secure);
        } catch (error) {
          throw new Error(`${(error as Error).message}\n--- app output:\n${app.output()}`, { cause: error });
        } finally {
          await app.stop();
        }
      }
    }, 120_000);
  });

  /** `npx nest-pg-session ...` as an operator runs it: npm's link to the tarball's `bin`, through its shebang. */
  describe('the nest-pg-session command', () => {
    // An empty database: the command itself creates the tables.
    let emptyDb: EmptyDatabase;
    beforeAll(async () => void (emptyDb = await emptyDatabase('cli')));
    afterAll(async () => emptyDb?.drop());

    const cli = (args: string[], env?: Record<string, string>) => {
      const result = spawnSync(join(scratch, 'node_modules/.bin/nest-pg-session'), args, {
        cwd: scratch,
        encoding: 'utf8',
        env: { PATH: process.env.PATH!, NODE_OPTIONS: '', ...(env ?? { DATABASE_URL: emptyDb.url }) },
        timeout: 60_000,
      });
      return { code: result.status, out: result.stdout.trim(), err: result.stderr.trim() };
    };

    it('ships the command inside `files`', () => {
      expect(files).toEqual(expect.arrayContaining(['dist/src/session/cli/main.js']));
      expect(files.filter((f) => f.includes('purge-cli'))).toEqual([]);
    });

    it('--help, and the errors of the first hour: no DATABASE_URL, a bad one, no tables', () => {
      const help = cli(['--help'], {});
      expect(help.code).toBe(0);
      expect(help.out).toMatch(/^Usage: nest-pg-session <command> \[options\]/);
      expect(help.out).toMatch(/Exit codes:/);

      expect(cli(['sessions'], {})).toMatchObject({
        code: 2,
        err: expect.stringMatching(/^nest-pg-session: DATABASE_URL is not set/),
      });
      const bad = cli(['sessions'], { DATABASE_URL: 'mysql://root:s3cret@db/app' });
      expect(bad).toMatchObject({
        code: 2,
        err: expect.stringMatching(/DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/),
      });
      expect(bad.err).not.toContain('s3cret');

      expect(cli(['sessions'])).toMatchObject({
        code: 3,
        err: expect.stringMatching(/^nest-pg-session: the session tables do not exist .*npx nest-pg-session migrate/),
      });
    });

    it('migrate, sessions, revoke, export-user, erase-user and purge against the database', async () => {
      expect(cli(['migrate'])).toMatchObject({
        code: 0,
        out: expect.stringMatching(
          /^ran CreateSessionTables\d+, CreateSessionPurgeRuns\d+, CreateSessionPurgeLease\d+, PartitionSessionAuditLog\d+, CreateSessionRetiredTokens\d+, AddSessionLifetimesAndGuests\d+, CreateSessionModuleKeys\d+, IndexAuditLogByNetwork\d+, AddSessionImpersonation\d+, AddSessionSecondFactor\d+, AddAuditPersonalDataIndex\d+$/,
        ),
      });
      const pool = new pg.Pool({ connectionString: emptyDb.url, max: 1 });
      // pool.end() resolves before its socket has closed, so afterAll's DROP ... WITH (FORCE) can still
      // terminate it (57P01 on an idle client): heard here, not an unhandled error (as in database.ts).
      pool.on('error', () => undefined);
      try {
        await pool.query(
          `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
           SELECT sha256(gen_random_uuid()::text::bytea), CASE WHEN g <= 2 THEN 'gone' ELSE 'u' || (g % 2) END,
                  now() + (CASE WHEN g <= 2 THEN '-1 minute' ELSE '1 hour' END)::interval, now() + interval '2 hours'
           FROM generate_series(1, 6) g`,
        );
        expect(cli(['sessions', '--json'])).toMatchObject({ code: 0, out: '{"active":4}' });
        expect(cli(['revoke', '--user', 'u1', '--actor', 'ops'])).toMatchObject({
          code: 0,
          out: 'revoked 2 sessions of user "u1" (actor "ops")',
        });
        // The privacy commands load their module on demand: that import must resolve in the package too.
        expect(JSON.parse(cli(['export-user', 'u0', '--json']).out)).toMatchObject({
          userId: 'u0',
          sessions: [{}, {}],
        });
        expect(JSON.parse(cli(['erase-user', 'u0', '--actor', 'ops', '--json']).out)).toMatchObject({
          mode: 'anonymise',
          sessionsDeleted: 2,
        });
        const purge = cli(['purge', '--json'], { DATABASE_URL: emptyDb.url, PURGE_DUTY_CYCLE: '1' });
        expect(purge.code).toBe(0);
        // stdout is the result alone (the library's log lines go to stderr), so it parses as it is.
        expect(JSON.parse(purge.out)).toMatchObject({ sessionsDeleted: 2 });
        expect(purge.err).toMatch(/purge run/);
      } finally {
        await pool.end();
      }
    }, 180_000); // seven command runs, each a fresh Node process: about a minute on a busy 2-core machine
  });
});
