import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import request from 'supertest';
import { SessionEvents, SessionPrivacyService, type SessionAuditRecord } from '../../src/session/index.js';
import { userPseudonym } from '../../src/session/privacy/pseudonym.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { generateToken, hashToken } from '../../src/session/token/session-token.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createHostApp, type HostApp } from '../support/host-app.js';
import { cookie, eventually, sessionCookie } from '../support/demo.js';
import { fakeRequest } from '../support/fake-http.js';

// Distinctive values, so a search of every column finds them wherever they survive.
const IP = '198.51.100.77';
const IP2 = '198.51.100.78';
const UA = 'ErasureProbe/9.9 (first device)';
const UA2 = 'ErasureProbe/9.9 (second device)';
const OTHER_IP = '192.0.2.50';
const OTHER_UA = 'OtherAgent/1.0 (untouched)';
const ADMIN_IP = '203.0.113.200';
const ADMIN_UA = 'AdminConsole/1.0';
const MINUTE = 60_000;

describe('SessionPrivacyService.eraseUser on real PostgreSQL', () => {
  let db: TestDatabase;
  let a: HostApp;
  let b: HostApp;
  let store: SessionStore;
  let privacy: SessionPrivacyService;
  beforeAll(async () => {
    db = await createTestDatabase();
    // Two instances with caches: B learns of the erasure only through the NOTIFY.
    const session = { cache: { enabled: true, ttl: '60s' } } as const;
    a = await createHostApp({ url: db.url, session });
    b = await createHostApp({ url: db.url, session });
    store = a.moduleRef.get(SessionStore);
    privacy = a.moduleRef.get(SessionPrivacyService);
  });
  afterAll(async () => {
    await a?.app.close();
    await b?.app.close();
    await db?.drop();
  });

  const live = { idleTimeoutMs: 30 * MINUTE, absoluteTimeoutMs: 60 * MINUTE };
  async function session(userId: string | null, ip: string, userAgent: string, replaces: Buffer | null = null) {
    const token = generateToken();
    const row = await store.create({
      tokenHash: hashToken(token),
      replacesTokenHash: replaces,
      userId,
      data: { theme: 'dark', owner: userId ?? 'guest' },
      ...live,
      ip,
      userAgent,
    });
    return { token, id: row.id };
  }

  /** Every footprint erasure must remove: sessions (guest, rotated, impersonating), changes, flood rows, admin acts. */
  async function populate(userId: string, other: string): Promise<void> {
    const guest = await session(null, IP, UA);
    const user = await session(userId, IP, UA, hashToken(guest.token)); // the guest logs in
    const next = generateToken();
    await store.rotate({
      id: user.id,
      oldTokenHash: hashToken(user.token),
      newTokenHash: hashToken(next),
      idleTimeoutMs: live.idleTimeoutMs,
      reason: 'manual',
      reauthenticated: false,
      context: { actorId: userId, ip: IP, userAgent: UA },
    });
    await store.recordClientChange(user.id, IP2, UA2); // ip_changed and ua_changed, with from/to
    await store.insertAggregatedEvents([
      {
        event: 'csrf_failed',
        session_id: user.id,
        user_id: userId,
        ip: IP,
        user_agent: null,
        details: {
          count: 3,
          user_agents: [
            { value: UA, count: 2 },
            { value: UA2, count: 1 },
          ],
        },
      },
      {
        event: 'invalid_token',
        session_id: guest.id,
        user_id: null,
        ip: IP,
        user_agent: UA,
        details: { count: 1, user_agents: [{ value: UA, count: 1 }] },
      },
    ]);
    // The other user's own sessions, and what the erased user did to them as an admin.
    const victim = await session(other, OTHER_IP, OTHER_UA);
    await session(other, OTHER_IP, OTHER_UA);
    await store.revoke(victim.id, 'admin', { actorId: userId, ip: IP, userAgent: UA });
    const impersonation = await store.startImpersonation({
      impersonatorSessionId: user.id,
      userId: other,
      tokenHash: hashToken(generateToken()),
      idleTimeoutMs: 10 * MINUTE,
      maxDurationMs: 10 * MINUTE,
      reason: 'support ticket 42',
      context: { ip: IP2, userAgent: UA2 },
    });
    expect(impersonation).toBeDefined();
  }

  /** How many rows of each table hold `needle` in any column (row_to_json: text, jsonb, inet as text alike). */
  async function occurrences(needle: string): Promise<Record<string, number>> {
    const { rows: tables } = await db.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`,
    );
    const found: Record<string, number> = {};
    for (const { name } of tables) {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM "${name}" t WHERE strpos(row_to_json(t)::text, $1) > 0`,
        [needle],
      );
      if (rows[0].n > 0) found[name] = rows[0].n;
    }
    return found;
  }

  async function pseudonymOf(userId: string): Promise<string> {
    const { rows } = await db.pool.query(`SELECT key FROM session_module_keys WHERE name = 'user-pseudonym'`);
    return userPseudonym(rows[0].key, userId);
  }

  /** The other user's audit rows that the erased user (by id, or by pseudonym once erased) did not cause. */
  async function otherUsersRows(other: string, erased: string) {
    const { rows } = await db.pool.query(
      `SELECT * FROM session_audit_log WHERE user_id = $1 AND actor_id IS DISTINCT FROM $2 ORDER BY id`,
      [other, erased],
    );
    return rows;
  }

  const admin = { actorId: 'admin-1', request: fakeRequest({ ip: ADMIN_IP, userAgent: ADMIN_UA }) };

  describe("mode 'anonymise' (the default)", () => {
    it("leaves no address, user agent or id of the user in any table; other users' rows untouched", async () => {
      const user = 'u-erase-anon';
      const other = 'u-other-anon';
      await populate(user, other);
      const before = await otherUsersRows(other, user);
      for (const needle of [IP, IP2, UA, UA2, user])
        expect([needle, await occurrences(needle)]).not.toEqual([needle, {}]);

      const result = await privacy.eraseUser(user, admin);

      for (const needle of [IP, IP2, UA, UA2, user]) expect([needle, await occurrences(needle)]).toEqual([needle, {}]);
      const pseudonym = await pseudonymOf(user);
      expect(result).toEqual({
        mode: 'anonymise',
        pseudonym,
        sessionsDeleted: 3, // the user's, their guest session before login, the impersonation they started
        retiredTokensDeleted: 2, // the rotation, and the admin token the impersonation retired
        auditRowsAnonymised: expect.any(Number),
        auditRowsDeleted: 0,
      });
      expect(await otherUsersRows(other, result.pseudonym)).toEqual(before);
      expect(await occurrences(OTHER_IP)).toEqual({ session_audit_log: 2, user_sessions: 2 });
      expect(await occurrences(OTHER_UA)).toEqual({ session_audit_log: 2, user_sessions: 2 });
      expect(await occurrences('support ticket 42')).toEqual({ session_audit_log: 1 }); // the admin's reason stays
    });

    it('keeps the statistics: every row stays, under one keyed pseudonym, and the erasure is audited', async () => {
      const user = 'u-erase-stats';
      const other = 'u-other-stats';
      await populate(user, other);
      const { rows: before } = await db.pool.query(
        `SELECT event, count(*)::int AS n FROM session_audit_log WHERE user_id = $1 OR actor_id = $1 GROUP BY 1 ORDER BY 1`,
        [user],
      );
      const emitted: SessionAuditRecord[] = [];
      const subscription = a.moduleRef
        .get(SessionEvents)
        .on('personal_data_erased')
        .subscribe((record) => emitted.push(record));
      const result = await privacy.eraseUser(user, admin).finally(() => subscription.unsubscribe());
      const { rows: after } = await db.pool.query(
        `SELECT event, count(*)::int AS n FROM session_audit_log WHERE (user_id = $1 OR actor_id = $1)
           AND event <> 'personal_data_erased' GROUP BY 1 ORDER BY 1`,
        [result.pseudonym],
      );
      expect(after).toEqual(before);
      expect(result.pseudonym).toMatch(/^anon:[0-9a-f]{32}$/);
      // The admin's acts on the other user keep that user as subject, with the pseudonym as actor.
      const { rows: acts } = await db.pool.query(
        `SELECT event, user_id, ip, user_agent FROM session_audit_log WHERE actor_id = $1 AND user_id = $2 ORDER BY id`,
        [result.pseudonym, other],
      );
      expect(acts).toEqual([
        { event: 'revoked', user_id: other, ip: null, user_agent: null },
        { event: 'impersonation_started', user_id: other, ip: null, user_agent: null },
      ]);
      const { rows: changes } = await db.pool.query(
        `SELECT event, details FROM session_audit_log WHERE user_id = $1 AND event IN ('ip_changed', 'ua_changed', 'csrf_failed')`,
        [result.pseudonym],
      );
      for (const row of changes) expect(Object.keys(row.details)).not.toEqual(expect.arrayContaining(['from']));
      expect(changes.find((r) => r.event === 'csrf_failed')!.details).toEqual({ count: 3 });

      const { rows: records } = await db.pool.query(
        `SELECT * FROM session_audit_log WHERE event = 'personal_data_erased' AND user_id = $1`,
        [result.pseudonym],
      );
      expect(records).toEqual([
        expect.objectContaining({
          session_id: null,
          actor_id: 'admin-1',
          ip: ADMIN_IP,
          user_agent: ADMIN_UA,
          details: {
            mode: 'anonymise',
            sessionsDeleted: 3,
            retiredTokensDeleted: 2,
            auditRowsAnonymised: result.auditRowsAnonymised,
            auditRowsDeleted: 0,
          },
        }),
      ]);
      // Emitted once committed, as the row is stored.
      expect(emitted).toEqual([
        expect.objectContaining({ id: records[0].id, userId: result.pseudonym, actorId: 'admin-1', ip: ADMIN_IP }),
      ]);
    });
  });

  it("mode 'delete': the user's rows go, their acts on others stay anonymised; nothing of theirs is left", async () => {
    const user = 'u-erase-delete';
    const other = 'u-other-delete';
    await populate(user, other);
    const before = await otherUsersRows(other, user);
    const { rows: own } = await db.pool.query(
      `SELECT count(*)::int AS n FROM session_audit_log WHERE user_id = $1
         OR session_id IN (SELECT (details->>'guestSessionId')::uuid FROM session_audit_log WHERE user_id = $1 AND event = 'guest_upgraded')`,
      [user],
    );

    const result = await privacy.eraseUser(user, { ...admin, mode: 'delete' });

    expect(result).toMatchObject({ mode: 'delete', sessionsDeleted: 3, retiredTokensDeleted: 2 });
    expect(result.auditRowsDeleted).toBe(own[0].n);
    expect(result.auditRowsAnonymised).toBe(2); // the revocation and the impersonation of the other user
    for (const needle of [IP, IP2, UA, UA2, user]) expect([needle, await occurrences(needle)]).toEqual([needle, {}]);
    expect(await otherUsersRows(other, result.pseudonym)).toEqual(before);
    const { rows } = await db.pool.query(`SELECT event FROM session_audit_log WHERE user_id = $1`, [result.pseudonym]);
    expect(rows).toEqual([{ event: 'personal_data_erased' }]);
  });

  it('is idempotent: an unknown or already erased user succeeds with zero counts, under the same pseudonym', async () => {
    const user = 'u-erase-twice';
    await session(user, IP, UA);
    const first = await privacy.eraseUser(user, admin);
    expect(first.sessionsDeleted).toBe(1);
    const zero = { sessionsDeleted: 0, retiredTokensDeleted: 0, auditRowsAnonymised: 0, auditRowsDeleted: 0 };
    expect(await privacy.eraseUser(user, admin)).toEqual({ mode: 'anonymise', pseudonym: first.pseudonym, ...zero });
    expect(await privacy.eraseUser(user, { ...admin, mode: 'delete' })).toEqual({
      mode: 'delete',
      pseudonym: first.pseudonym,
      ...zero,
    });
    const unknown = await privacy.eraseUser('u-never-seen', admin);
    expect(unknown).toMatchObject(zero);
    expect(unknown.pseudonym).not.toBe(first.pseudonym);
  });

  it('a user erasing themselves is recorded under the pseudonym, without their address', async () => {
    const user = 'u-erase-self';
    await session(user, IP, UA);
    const result = await privacy.eraseUser(user, { actorId: user, request: fakeRequest({ ip: IP, userAgent: UA }) });
    const { rows } = await db.pool.query(
      `SELECT user_id, actor_id, ip, user_agent FROM session_audit_log WHERE event = 'personal_data_erased' AND user_id = $1`,
      [result.pseudonym],
    );
    expect(rows).toEqual([{ user_id: result.pseudonym, actor_id: result.pseudonym, ip: null, user_agent: null }]);
    expect(await occurrences(user)).toEqual({});
  });

  it("the user's tokens are refused at once, by this instance's cache and, through NOTIFY, by another's", async () => {
    const login = await request(a.server).post('/login?user=u-erase-cached').expect(200);
    const token = sessionCookie(login)!;
    await request(a.server).get('/me').set(cookie(token)).expect(200); // both caches hold it now
    await request(b.server).get('/me').set(cookie(token)).expect(200);

    await privacy.eraseUser('u-erase-cached', admin);

    await request(a.server).get('/me').set(cookie(token)).expect(401);
    await eventually(async () => (await request(b.server).get('/me').set(cookie(token))).status === 401, 5_000);
  });

  it('is one transaction: when a step fails, no session is deleted and no row changed', async () => {
    const user = 'u-erase-atomic';
    const created = await session(user, IP, UA);
    await db.pool.query(`
      CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
      CREATE TRIGGER refuse_update BEFORE UPDATE ON session_audit_log FOR EACH ROW EXECUTE FUNCTION refuse_update();`);
    try {
      await expect(privacy.eraseUser(user, admin)).rejects.toThrow('refused');
    } finally {
      await db.pool.query(`DROP TRIGGER refuse_update ON session_audit_log; DROP FUNCTION refuse_update();`);
    }
    expect(await store.findLiveById(created.id)).toMatchObject({ userId: user, ip: IP });
    expect(await occurrences(UA)).toEqual({ session_audit_log: 1, user_sessions: 1 });
    expect((await privacy.eraseUser(user, admin)).sessionsDeleted).toBe(1);
  });

  it.each([
    ['', /user id must be 1..255 characters/],
    ['x'.repeat(256), /user id must be 1..255 characters/],
    ['a\u0000b', /user id must be 1..255 characters/],
    [`anon:${'0'.repeat(32)}`, /already a pseudonym/],
  ])('refuses the user id %j with 400', async (userId, message) => {
    const refusal = privacy.eraseUser(userId, admin);
    await expect(refusal).rejects.toBeInstanceOf(BadRequestException);
    await expect(refusal).rejects.toMatchObject({ response: { message: [expect.stringMatching(message)] } });
  });

  it('refuses an unknown mode (400) and a missing actor (TypeError)', async () => {
    await expect(privacy.eraseUser('u-x', { ...admin, mode: 'shred' as never })).rejects.toMatchObject({
      response: { message: ['mode must be one of: anonymise, delete'] },
    });
    await expect(privacy.eraseUser('u-x', {} as never)).rejects.toThrow(TypeError);
    await expect(privacy.eraseUser('u-x', { actorId: '' })).rejects.toThrow(/actorId/);
  });
});
