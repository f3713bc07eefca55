import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli } from '../../src/session/cli/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** `nest-pg-session export-user` and `erase-user`, in process (as test/integration/cli.spec.ts runs the others). */
describe('nest-pg-session export-user / erase-user', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  async function cli(args: string[], env: Record<string, string | undefined> = { DATABASE_URL: db.url }) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(args, env, { out: (l) => void out.push(l), err: (l) => void err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  async function seed(userId: string, userAgent: string): Promise<string> {
    const { rows } = await db.pool.query(
      `WITH s AS (
         INSERT INTO user_sessions (token_hash, user_id, data, idle_expires_at, absolute_expires_at, ip, user_agent)
         VALUES (sha256(gen_random_uuid()::text::bytea), $1, '{"theme":"dark"}', now() + interval '30 minutes',
                 now() + interval '1 hour', '198.51.100.3', $2)
         RETURNING id, user_id, ip, user_agent)
       INSERT INTO session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)
       SELECT 'created', id, user_id, user_id, ip, user_agent, '{}' FROM s RETURNING session_id`,
      [userId, userAgent],
    );
    return rows[0].session_id;
  }

  it('--help describes both commands', async () => {
    const help = await cli(['--help'], {});
    expect(help.out).toContain('export-user <id>');
    expect(help.out).toContain('erase-user <id> --actor <id> [--mode anonymise|delete]');
  });

  it('usage errors exit 2 before connecting: missing id or actor, a bad id or mode, foreign options', async () => {
    const unreachable = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' };
    for (const [args, message] of [
      [['export-user'], /export-user needs the user id/],
      [['erase-user', '--actor', 'ops'], /erase-user needs the user id/],
      [['erase-user', 'u-1'], /erase-user needs --actor <id>/],
      [['erase-user', 'u-1', '--actor', 'ops', '--mode', 'shred'], /--mode must be one of: anonymise, delete/],
      [['erase-user', 'u-1', '--actor', ' '], /--actor needs a value/],
      [['export-user', 'x'.repeat(256)], /the user id must be 1..255 characters/],
      [['export-user', 'a\u0007b'], /the user id must be 1..255 characters/],
      [['export-user', 'u-1', 'u-2'], /unexpected argument "u-2"/],
      [['export-user', 'u-1', '--actor', 'ops'], /export-user does not take --actor/],
      [['erase-user', 'u-1', '--actor', 'ops', '--user', 'u-2'], /erase-user does not take --user/],
    ] as Array<[string[], RegExp]>)
      expect([args, await cli(args, unreachable)]).toEqual([
        args,
        { code: 2, out: '', err: expect.stringMatching(message) },
      ]);
  });

  it('export-user prints the sessions and audit events as JSON, never a token hash, control characters escaped', async () => {
    const id = await seed('u-cli', 'probe\u009b2J');
    const pretty = await cli(['export-user', 'u-cli']);
    expect(pretty.code).toBe(0);
    expect(pretty.out.split('\n').length).toBeGreaterThan(10); // indented
    expect(pretty.out.includes('\u009b')).toBe(false);
    const exported = JSON.parse((await cli(['export-user', 'u-cli', '--json'])).out);
    expect(exported).toMatchObject({
      userId: 'u-cli',
      sessions: [{ id, ip: '198.51.100.3', userAgent: 'probe\u009b2J', data: { theme: 'dark' } }],
      auditEvents: [{ event: 'created', sessionId: id, userId: 'u-cli' }],
      truncated: { sessions: false, auditEvents: false },
    });
    const { rows } = await db.pool.query(`SELECT encode(token_hash, 'hex') AS hex FROM user_sessions WHERE id = $1`, [
      id,
    ]);
    expect(pretty.out).not.toContain(rows[0].hex);
  });

  it('erase-user erases in the chosen mode, audited with --actor; repeating it is a no-op; exit 3 without tables', async () => {
    await seed('u-gone', 'GoneAgent/1');
    const erased = await cli(['erase-user', 'u-gone', '--actor', 'ops:dpo']);
    expect(erased).toMatchObject({
      code: 0,
      out: expect.stringMatching(
        /^erased user "u-gone" \(mode anonymise, actor "ops:dpo"\): 1 sessions and 0 retired tokens deleted, 1 audit rows anonymised, 0 deleted; audit pseudonym anon:[0-9a-f]{32}$/,
      ),
    });
    const { rows } = await db.pool.query(
      `SELECT user_id, actor_id, details FROM session_audit_log WHERE event = 'personal_data_erased'`,
    );
    expect(rows).toEqual([
      {
        user_id: expect.stringMatching(/^anon:/),
        actor_id: 'ops:dpo',
        details: {
          mode: 'anonymise',
          sessionsDeleted: 1,
          retiredTokensDeleted: 0,
          auditRowsAnonymised: 1,
          auditRowsDeleted: 0,
        },
      },
    ]);
    expect(await db.pool.query(`SELECT 1 FROM user_sessions WHERE user_agent = 'GoneAgent/1'`)).toMatchObject({
      rowCount: 0,
    });
    const again = JSON.parse(
      (await cli(['erase-user', 'u-gone', '--actor', 'ops:dpo', '--mode', 'delete', '--json'])).out,
    );
    expect(again).toEqual({
      mode: 'delete',
      pseudonym: rows[0].user_id,
      sessionsDeleted: 0,
      retiredTokensDeleted: 0,
      auditRowsAnonymised: 0,
      auditRowsDeleted: 0,
    });

    await seed('u-deleted', 'DeletedAgent/1');
    const deleted = JSON.parse(
      (await cli(['erase-user', 'u-deleted', '--actor', 'ops', '--mode', 'delete', '--json'])).out,
    );
    expect(deleted).toMatchObject({ mode: 'delete', sessionsDeleted: 1, auditRowsDeleted: 1 });

    await db.pool.query(`ALTER TABLE user_sessions RENAME TO user_sessions_away`);
    try {
      expect(await cli(['export-user', 'u-1'])).toMatchObject({ code: 3 });
    } finally {
      await db.pool.query(`ALTER TABLE user_sessions_away RENAME TO user_sessions`);
    }
  });
});
