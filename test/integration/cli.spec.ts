import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runCli } from '../../src/session/cli/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** The `nest-pg-session` commands in process (the packed binary is tested in test/e2e/cli.e2e.spec.ts). */
describe('nest-pg-session CLI', () => {
  let db: TestDatabase;
  let empty: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    db = await createTestDatabase();
    const name = `nps_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `/${name}`;
    empty = {
      url: url.toString(),
      async drop() {
        const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await client.connect();
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => client.end());
      },
    };
  });
  afterAll(async () => {
    await db?.drop();
    await empty?.drop();
  });

  async function cli(args: string[], env: Record<string, string | undefined> = { DATABASE_URL: db.url }) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(args, env, { out: (l) => void out.push(l), err: (l) => void err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  async function seed(userId: string, n: number, expired = false): Promise<void> {
    await db.pool.query(
      `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
       SELECT sha256(gen_random_uuid()::text::bytea), $1, now() + $3::interval, now() + interval '1 hour'
       FROM generate_series(1, $2)`,
      [userId, n, expired ? '-1 minute' : '30 minutes'],
    );
  }

  it('--help lists the commands and the exit codes, exit 0; no command prints it with exit 2', async () => {
    const help = await cli(['--help'], {});
    expect(help.code).toBe(0);
    for (const text of [
      'migrate',
      'purge',
      'sessions [--user <id>]',
      'revoke --user <id>',
      'Exit codes:',
      'DATABASE_URL',
    ])
      expect(help.out).toContain(text);
    expect((await cli(['purge', '--help'], {})).code).toBe(0);
    expect((await cli([], {})).code).toBe(2);
  });

  it('usage errors exit 2 with one line saying what is wrong', async () => {
    expect(await cli(['frobnicate'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(
        /^nest-pg-session: unknown command "frobnicate" \(commands: migrate, purge, sessions, revoke, export-user, erase-user\)/,
      ),
    });
    expect(await cli(['sessions', '--usr', 'x'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/^nest-pg-session: Unknown option '--usr'/),
    });
    expect(await cli(['sessions', '--actor', 'x'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/^nest-pg-session: sessions does not take --actor/),
    });
    expect(await cli(['sessions', 'alice'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/^nest-pg-session: sessions: unexpected argument "alice"/),
    });
    expect(await cli(['revoke'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/^nest-pg-session: revoke needs --user <id>/),
    });
    expect(await cli(['purge', '--batch-size', 'lots'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/--batch-size \(or PURGE_BATCH_SIZE\) must be a number, got "lots"/),
    });
    expect(await cli(['purge', '--duty-cycle', '5'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/dutyCycle/),
    });
  });

  it('a missing or bad DATABASE_URL exits 2 and never prints a password', async () => {
    expect(await cli(['sessions'], {})).toMatchObject({
      code: 2,
      err: expect.stringMatching(/^nest-pg-session: DATABASE_URL is not set: point it at the database/),
    });
    const garbled = await cli(['sessions'], { DATABASE_URL: 's3cret@db/app' });
    expect(garbled).toMatchObject({
      code: 2,
      err: expect.stringMatching(/DATABASE_URL is not a URL \(value not shown/),
    });
    expect(garbled.err).not.toContain('s3cret');
    const mysql = await cli(['sessions'], { DATABASE_URL: 'mysql://root:s3cret@db/app' });
    expect(mysql).toMatchObject({
      code: 2,
      err: expect.stringMatching(/DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL, not mysql:/),
    });
    expect(mysql.err).not.toContain('s3cret');
  });

  it('an unreachable database or a wrong database name exits 1, naming it without the password', async () => {
    const unreachable = await cli(['sessions'], { DATABASE_URL: 'postgres://u:s3cret@127.0.0.1:1/app' });
    expect(unreachable).toMatchObject({
      code: 1,
      err: expect.stringMatching(
        /^nest-pg-session: cannot use the database at postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/app: .*ECONNREFUSED/,
      ),
    });
    expect(unreachable.err).not.toContain('s3cret');
    const url = new URL(db.url);
    url.pathname = '/nps_no_such_database';
    expect(await cli(['sessions'], { DATABASE_URL: url.href })).toMatchObject({
      code: 1,
      err: expect.stringMatching(/database "nps_no_such_database" does not exist/),
    });
  });

  it('without the tables: exit 3 and the way to create them; `migrate` creates them, twice is a no-op', async () => {
    expect(await cli(['purge'], { DATABASE_URL: empty.url })).toMatchObject({
      code: 3,
      err: expect.stringMatching(
        /^nest-pg-session: the session tables do not exist in this database .*npx nest-pg-session migrate/,
      ),
    });
    expect(await cli(['migrate'], { DATABASE_URL: empty.url })).toMatchObject({
      code: 0,
      out: 'ran CreateSessionTables1763780000000, CreateSessionPurgeRuns1796169600000, CreateSessionPurgeLease1796212800000, PartitionSessionAuditLog1796256000000, CreateSessionRetiredTokens1796342400000, AddSessionLifetimesAndGuests1796428800000, CreateSessionModuleKeys1796515200000, IndexAuditLogByNetwork1796515200001, AddSessionImpersonation1796601600000, AddSessionSecondFactor1796688000000, AddAuditPersonalDataIndex1796688000001',
    });
    expect(await cli(['migrate'], { DATABASE_URL: empty.url })).toMatchObject({
      code: 0,
      out: 'session tables up to date',
    });
    expect(await cli(['sessions', '--json'], { DATABASE_URL: empty.url })).toMatchObject({
      code: 0,
      out: '{"active":0}',
    });
  });

  it('sessions: the count, a user’s list; revoke: all of a user’s sessions, audited with the actor', async () => {
    await seed('alice', 2);
    await seed('bob', 1);
    expect(await cli(['sessions'])).toMatchObject({ code: 0, out: '3 active sessions' });
    expect(await cli(['--json', 'sessions'])).toMatchObject({ code: 0, out: '{"active":3}' }); // options before the command too
    const alice = await cli(['sessions', '--user', 'alice', '--json']);
    expect(alice.code).toBe(0);
    expect(JSON.parse(alice.out)).toHaveLength(2);
    expect(JSON.parse(alice.out)[0]).toEqual(
      expect.objectContaining({ id: expect.any(String), createdAt: expect.any(String), expiresAt: expect.any(String) }),
    );

    // What clients sent (user agent, address) is printed escaped: no control sequence reaches the
    // terminal, neither ESC nor the one-byte C1 CSI (U+009B) that JSON.stringify would let through.
    await db.pool.query(
      `UPDATE user_sessions SET user_agent = E'evil\\u001b[2J\\u009b2J', ip = '203.0.113.9' WHERE user_id = 'alice'`,
    );
    // One of them an admin's impersonation of alice: the listing says so.
    await db.pool.query(
      `UPDATE user_sessions SET impersonator_id = 'u-admin', impersonator_session_id = gen_random_uuid()
       WHERE id = (SELECT id FROM user_sessions WHERE user_id = 'alice' LIMIT 1)`,
    );
    const listed = await cli(['sessions', '--user', 'alice']);
    expect(listed.out.split('\n')[0]).toBe('2 active sessions of user "alice"');
    expect(listed.out.match(/ {2}impersonated by "u-admin"$/gm)).toHaveLength(1);
    expect(listed.out).toContain('"203.0.113.9"  "evil\\u001b[2J\\u009b2J"');
    expect(listed.out.includes('\u001b') || listed.out.includes('\u009b')).toBe(false);
    const listedJson = await cli(['sessions', '--user', 'alice', '--json']);
    expect(listedJson.out.includes('\u001b') || listedJson.out.includes('\u009b')).toBe(false);
    expect(JSON.parse(listedJson.out)[0].userAgent).toBe('evil\u001b[2J\u009b2J');
    const impersonatedBy = JSON.parse(listedJson.out).map((s: { impersonatedBy?: string }) => s.impersonatedBy);
    expect(impersonatedBy.filter(Boolean)).toEqual(['u-admin']);

    expect(await cli(['revoke', '--user', 'alice', '--actor', 'ops:carol'])).toMatchObject({
      code: 0,
      out: 'revoked 2 sessions of user "alice" (actor "ops:carol")',
    });
    expect(await cli(['sessions', '--json'])).toMatchObject({ out: '{"active":1}' });
    const { rows } = await db.pool.query(
      `SELECT event, actor_id, details->>'reason' AS reason FROM session_audit_log WHERE user_id = 'alice' ORDER BY id`,
    );
    expect(rows).toEqual([
      { event: 'revoked', actor_id: 'ops:carol', reason: 'admin' },
      { event: 'revoked', actor_id: 'ops:carol', reason: 'admin' },
      { event: 'revoked_all', actor_id: 'ops:carol', reason: 'admin' },
    ]);
    const byDefault = await cli(['revoke', '--user', 'bob', '--json']);
    expect(JSON.parse(byDefault.out)).toEqual({ revoked: 1, userId: 'bob', actorId: expect.stringMatching(/^cli/) });
  });

  it('purge: deletes the expired sessions, reading the demo’s env vars (flags win)', async () => {
    await seed('carol', 3, true);
    const run = await cli(['purge', '--json', '--batch-size', '2'], {
      DATABASE_URL: db.url,
      PURGE_BATCH_SIZE: 'not read: the flag wins',
      PURGE_DUTY_CYCLE: '1',
      AUDIT_RETENTION: 'forever',
    });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.out)).toMatchObject({ sessionsDeleted: 3, auditRowsDeleted: 0, batches: 2 });
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions WHERE user_id = 'carol'`);
    expect(rows[0].n).toBe(0);
  });

  it('purge: says what it did to the audit partitions (rows moved out of DEFAULT into their week, old weeks dropped)', async () => {
    // Two rows 30 days back: no partition has their week, so they wait in DEFAULT.
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at) VALUES ('created', now() - interval '30 days'), ('created', now() - interval '30 days')`,
    );
    const keep = await cli(['purge', '--audit-retention', 'forever'], { DATABASE_URL: db.url });
    expect(keep).toMatchObject({
      code: 0,
      out: expect.stringMatching(
        /^purged \d+ sessions and 0 audit rows in \d+ ms \(1 audit partitions created, 2 audit rows moved out of the default partition\)$/,
      ),
    });
    const drop = await cli(['purge', '--audit-retention', '14d'], { DATABASE_URL: db.url });
    expect(drop).toMatchObject({
      code: 0,
      out: expect.stringMatching(/^purged \d+ sessions and 2 audit rows in \d+ ms \(1 audit partitions dropped\)$/),
    });
  });

  it('purge: clears IP addresses and user agents past --personal-data-retention (PERSONAL_DATA_RETENTION), forever keeps them', async () => {
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at, ip, user_agent, details)
       VALUES ('ip_changed', now() - interval '3 days', '203.0.113.9', 'Agent/1', '{"from": "198.51.100.1", "to": "203.0.113.9"}')`,
    );
    const personal = `SELECT ip, user_agent, details FROM session_audit_log WHERE event = 'ip_changed'`;
    const env = { DATABASE_URL: db.url, AUDIT_RETENTION: 'forever' };
    expect(await cli(['purge', '--json'], { ...env, PERSONAL_DATA_RETENTION: 'forever' })).toMatchObject({ code: 0 });
    expect((await db.pool.query(personal)).rows).toEqual([
      { ip: '203.0.113.9', user_agent: 'Agent/1', details: { from: '198.51.100.1', to: '203.0.113.9' } },
    ]);
    const run = await cli(['purge', '--personal-data-retention', '2d'], { ...env, PERSONAL_DATA_RETENTION: '7d' });
    expect(run).toMatchObject({
      code: 0,
      out: expect.stringMatching(
        /^purged \d+ sessions and 0 audit rows in \d+ ms \(personal data cleared from 1 audit rows\)$/,
      ),
    });
    expect((await db.pool.query(personal)).rows).toEqual([{ ip: null, user_agent: null, details: {} }]);
    const longer = await cli(['purge', '--audit-retention', '14d', '--personal-data-retention', '30d'], env);
    expect(longer.code).toBe(2);
    expect(longer.err).toMatch(/privacy\.personalDataRetention: '30d' must not exceed purge\.auditRetention '14d'/);
  });
});
