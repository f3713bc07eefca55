import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const run = (command: string, args: string[], cwd: string) =>
  execFileSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

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
  }, 60_000);
  afterAll(async () => {
    rmSync(scratch, { recursive: true, force: true });
    await db?.drop();
  });

  it('holds the compiled library, its types, the migrations and the README, and no tests or demo', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/src/session/index.js',
        'dist/src/session/index.d.ts',
        'dist/migrations/index.js',
        'dist/src/session/health/index.js',
        'dist/src/session/health/index.d.ts',
      ]),
    );
    expect(
      files.filter((f) => /^(test|src|bench|\.ci)\/|dist\/src\/demo|dist\/src\/main|embedded-postgres|\.env/.test(f)),
    ).toEqual([]);
  });

  it('installs into a scratch app that boots with the module, runs the migrations and guards its routes', async () => {
    writeFileSync(
      join(scratch, 'package.json'),
      JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }),
    );
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
        'class-validator',
        'class-transformer',
        'reflect-metadata',
        'rxjs',
      ],
      scratch,
    );
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
      console.log(JSON.stringify({ open: open.status, closed: closed.status, reason: (await closed.json()).reason, health }));
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
    });
    // Optional peers (peerDependenciesMeta): npm installs neither, and the main entry works without them.
    expect(existsSync(join(scratch, 'node_modules/@nestjs/terminus'))).toBe(false);
    expect(existsSync(join(scratch, 'node_modules/prom-client'))).toBe(false);
    const { rows } = await db.pool.query(
      `SELECT to_regclass('user_sessions') AS sessions, to_regclass('session_audit_log') AS audit`,
    );
    expect(rows[0]).toEqual({ sessions: 'user_sessions', audit: 'session_audit_log' });
  }, 180_000);
});
