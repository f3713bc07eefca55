import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { installPackedPackage, type PackedApp } from '../support/packed.js';

/** `npx nest-pg-session ...` as an operator runs it: the `bin` of the packed tarball, installed into a scratch app. */
describe('the nest-pg-session command from the packed package', () => {
  let app: PackedApp;
  let database: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    app = installPackedPackage();
    // An empty database: the command itself creates the tables.
    const server = process.env.DATABASE_URL!;
    const name = `nps_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: server });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
    const url = new URL(server);
    url.pathname = `/${name}`;
    database = {
      url: url.toString(),
      async drop() {
        const client = new pg.Client({ connectionString: server });
        await client.connect();
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => client.end());
      },
    };
  }, 180_000);
  afterAll(async () => {
    app?.remove();
    await database?.drop();
  });

  /** node_modules/.bin/nest-pg-session: npm's link to `bin`, run through its shebang. */
  const cli = (args: string[], env: Record<string, string> = { DATABASE_URL: database.url }) => {
    const result = spawnSync(join(app.dir, 'node_modules/.bin/nest-pg-session'), args, {
      cwd: app.dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH!, NODE_OPTIONS: '', ...env },
      timeout: 60_000,
    });
    return { code: result.status, out: result.stdout.trim(), err: result.stderr.trim() };
  };

  it('ships the command inside `files`', () => {
    expect(app.files).toEqual(expect.arrayContaining(['dist/src/session/cli/main.js']));
    expect(app.files.filter((f) => f.includes('purge-cli'))).toEqual([]);
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

  it('migrate, sessions, revoke and purge against the database', async () => {
    expect(cli(['migrate'])).toMatchObject({
      code: 0,
      out: expect.stringMatching(/^ran CreateSessionTables\d+, CreateSessionPurgeRuns\d+$/),
    });
    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    try {
      await pool.query(
        `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
         SELECT sha256(gen_random_uuid()::text::bytea), CASE WHEN g <= 2 THEN 'gone' ELSE 'u' || (g % 2) END, now() + (CASE WHEN g <= 2 THEN '-1 minute' ELSE '1 hour' END)::interval, now() + interval '2 hours'
         FROM generate_series(1, 6) g`,
      );
      expect(cli(['sessions', '--json'])).toMatchObject({ code: 0, out: '{"active":4}' });
      expect(cli(['revoke', '--user', 'u1', '--actor', 'ops'])).toMatchObject({
        code: 0,
        out: 'revoked 2 sessions of user "u1" (actor "ops")',
      });
      const purge = cli(['purge', '--json'], { DATABASE_URL: database.url, PURGE_DUTY_CYCLE: '1' });
      expect(purge.code).toBe(0);
      expect(JSON.parse(purge.out.split('\n').pop()!)).toMatchObject({ sessionsDeleted: 2 });
    } finally {
      await pool.end();
    }
  });
});
