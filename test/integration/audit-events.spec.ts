import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Test, type TestingModule } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import { config as rxjsConfig, type Subscription } from 'rxjs';
import { toAuditRecord, type SessionAuditRecord } from '../../src/session/audit/audit-record.js';
import { SessionAdminService } from '../../src/session/admin/session-admin.service.js';
import { SessionEvents } from '../../src/session/audit/session-events.js';
import { SessionModule, SessionService } from '../../src/session/index.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { SessionValidator } from '../../src/session/session-validator.js';
import { tokenDigest } from '../../src/session/token/session-token.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/demo.js';
import { FakeResponse, fakeRequest } from '../support/fake-http.js';

const ROW = `id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details`;

describe('audit rows and SessionEvents for every lifecycle event', () => {
  let db: TestDatabase;
  let moduleRef: TestingModule;
  let sessions: SessionService;
  let validator: SessionValidator;
  let admin: SessionAdminService;
  let store: SessionStore;
  const emitted: SessionAuditRecord[] = [];
  let subscription: Subscription;
  const tokens: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: db.url, autoLoadEntities: true, retryAttempts: 0 }),
        SessionModule.forRoot({ rotationInterval: 0, rotationGrace: '2s', purge: { enabled: false } }), // the expiries here are the requests' to record
      ],
    }).compile();
    sessions = moduleRef.get(SessionService);
    validator = moduleRef.get(SessionValidator);
    admin = moduleRef.get(SessionAdminService);
    store = moduleRef.get(SessionStore);
    subscription = moduleRef.get(SessionEvents).events$.subscribe((record) => emitted.push(record));
  });
  afterAll(async () => {
    subscription?.unsubscribe();
    await moduleRef?.close();
    await db?.drop();
  });

  const login = async (userId: string, options: { token?: string; ip?: string; userAgent?: string } = {}) => {
    const response = new FakeResponse();
    const created = await sessions.create(fakeRequest(options), response, { userId });
    const token = response.sessionToken()!;
    tokens.push(token);
    return { id: created.sessionId, token };
  };

  /** A request the validator has attached the session to, as the guard would. */
  const authenticated = async (token: string, options: { ip?: string | null; userAgent?: string } = {}) => {
    const request = fakeRequest({ token, ...options });
    const response = new FakeResponse();
    const outcome = await validator.validate(request, response);
    return { request, response, outcome };
  };

  /** Exactly one row of `event` for the session, and SessionEvents emitted exactly that row. */
  const theRow = async (event: string, sessionId: string | null, userId?: string): Promise<SessionAuditRecord> => {
    const { rows } = sessionId
      ? await db.pool.query(`SELECT ${ROW} FROM session_audit_log WHERE event = $1 AND session_id = $2`, [
          event,
          sessionId,
        ])
      : await db.pool.query(`SELECT ${ROW} FROM session_audit_log WHERE event = $1 AND user_id = $2`, [event, userId]);
    expect(rows).toHaveLength(1);
    const record = toAuditRecord(rows[0]);
    expect(emitted.filter((e) => e.id === record.id)).toEqual([record]);
    return record;
  };

  const isLive = async (id: string) => (await store.findLiveById(id)) !== undefined;
  const dbNow = async () => (await db.pool.query('SELECT now() AS now')).rows[0].now as Date;

  it('created: UTC time from the database, the session uuid, the user as actor, ip, and a bounded user agent kept as given', async () => {
    const agent = `evil\r\nINJECTED: yes\u0000${'x'.repeat(2_000)}`;
    const { id } = await login('u-created', { ip: '198.51.100.9', userAgent: agent });
    const row = await theRow('created', id);
    expect(row).toMatchObject({
      sessionId: id,
      userId: 'u-created',
      actorId: 'u-created',
      ip: '198.51.100.9',
      details: {},
    });
    expect(row.userAgent).toHaveLength(512);
    expect(row.userAgent!.startsWith('evil\r\nINJECTED: yes\ufffd')).toBe(true); // as given, but no NUL (Postgres refuses it)
    expect(Math.abs(row.occurredAt.getTime() - (await dbNow()).getTime())).toBeLessThan(5_000);
    const { rows } = await db.pool.query(
      `SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS utc FROM session_audit_log WHERE id = $1`,
      [row.id],
    );
    expect(rows[0].utc).toBe(row.occurredAt.toISOString());
  });

  it('rotated: once, with the reason and the new version', async () => {
    const { token, id } = await login('u-rotated');
    const { request, outcome } = await authenticated(token, { ip: '198.51.100.10' });
    expect(outcome.ok).toBe(true);
    await sessions.rotate(request, new FakeResponse());
    const row = await theRow('rotated', id);
    expect(row).toMatchObject({ userId: 'u-rotated', ip: '198.51.100.10', details: { reason: 'manual', version: 2 } });
  });

  it('logout: once, by the user; the session row is gone', async () => {
    const { token, id } = await login('u-logout');
    const { request } = await authenticated(token);
    await sessions.destroy(request, new FakeResponse());
    expect(await theRow('logout', id)).toMatchObject({ userId: 'u-logout', actorId: 'u-logout', ip: '203.0.113.7' });
    expect((await db.pool.query('SELECT 1 FROM user_sessions WHERE id = $1', [id])).rowCount).toBe(0);
  });

  it('revoked (user): the given actor, or the owner when none is given', async () => {
    const a = await login('u-revoke');
    const b = await login('u-revoke');
    expect(
      await sessions.revoke(a.id, {
        reason: 'user',
        actorId: 'u-revoke',
        request: fakeRequest({ ip: '198.51.100.11' }),
      }),
    ).toBe(true);
    expect(await sessions.revoke(b.id)).toBe(true);
    expect(await theRow('revoked', a.id)).toMatchObject({
      userId: 'u-revoke',
      actorId: 'u-revoke',
      ip: '198.51.100.11',
      details: { reason: 'user' },
    });
    expect(await theRow('revoked', b.id)).toMatchObject({
      userId: 'u-revoke',
      actorId: 'u-revoke',
      ip: null,
      details: { reason: 'user' },
    });
  });

  it("revoked (admin): the admin is the actor, from the admin's address; an admin revocation without an admin is refused", async () => {
    const victim = await login('u-victim');
    expect(
      await admin.revokeSession(victim.id, {
        actorId: 'u-admin',
        request: fakeRequest({ ip: '192.0.2.1', userAgent: 'admin-console' }),
      }),
    ).toBe(true);
    expect(await theRow('revoked', victim.id)).toMatchObject({
      userId: 'u-victim',
      actorId: 'u-admin',
      ip: '192.0.2.1',
      userAgent: 'admin-console',
      details: { reason: 'admin' },
    });
    expect(await isLive(victim.id)).toBe(false);

    const other = await login('u-victim');
    await expect(sessions.revoke(other.id, { reason: 'admin' })).rejects.toThrow(/actorId/);
    await expect(sessions.revokeAll('u-victim', { reason: 'admin' })).rejects.toThrow(/actorId/);
    await expect(admin.revokeSession(other.id, { actorId: '' })).rejects.toThrow(/actorId/);
    expect(await isLive(other.id)).toBe(true);
  });

  it('revoked (revoke_others) and revoked_all: one row per session and one summary, all by the owner', async () => {
    const keep = await login('u-others');
    const gone = [await login('u-others'), await login('u-others')];
    expect(await sessions.revokeAll('u-others', { except: keep.id, actorId: 'u-others' })).toBe(2);
    for (const s of gone)
      expect(await theRow('revoked', s.id)).toMatchObject({
        actorId: 'u-others',
        details: { reason: 'revoke_others' },
      });
    expect(await theRow('revoked_all', null, 'u-others')).toMatchObject({
      sessionId: null,
      actorId: 'u-others',
      details: { reason: 'revoke_others', count: 2, except: keep.id },
    });
    expect(await isLive(keep.id)).toBe(true);
  });

  it('revoked (password_change): the owner is the actor when the app gives none', async () => {
    const current = await login('u-password');
    const old = await login('u-password');
    expect(await sessions.revokeAll('u-password', { except: current.id, reason: 'password_change' })).toBe(1);
    expect(await theRow('revoked', old.id)).toMatchObject({
      actorId: 'u-password',
      details: { reason: 'password_change' },
    });
    expect(await theRow('revoked_all', null, 'u-password')).toMatchObject({
      actorId: 'u-password',
      details: { reason: 'password_change', count: 1 },
    });
  });

  it('revoked (limit_evicted): names the owner, whose own login evicted it', async () => {
    const oldest = await login('u-limit');
    expect(await store.revoke(oldest.id, 'limit_evicted', { ip: '198.51.100.12' })).toBe(true);
    expect(await theRow('revoked', oldest.id)).toMatchObject({
      userId: 'u-limit',
      actorId: 'u-limit',
      ip: '198.51.100.12',
      details: { reason: 'limit_evicted' },
    });
  });

  it('revoked (limit_evicted) by a login over the limit: the row is written and emitted with the login', async () => {
    const oldest = await login('u-evict');
    await store.create({
      tokenHash: createHash('sha256').update('u-evict second login').digest(),
      replacesTokenHash: null,
      userId: 'u-evict',
      data: {},
      idleTimeoutMs: 60_000,
      absoluteTimeoutMs: 120_000,
      ip: '198.51.100.14',
      userAgent: null,
      limit: { maxSessionsPerUser: 1, policy: 'evict-oldest' },
    });
    expect(await isLive(oldest.id)).toBe(false);
    expect(await theRow('revoked', oldest.id)).toMatchObject({
      userId: 'u-evict',
      actorId: 'u-evict',
      details: { reason: 'limit_evicted' },
    });
  });

  it('revoked (fixation): a session planted in the login request is revoked, with the user logging in as actor', async () => {
    const planted = await login('u-attacker');
    const victim = await login('u-fixated', { token: planted.token, ip: '198.51.100.13' });
    expect(await theRow('revoked', planted.id)).toMatchObject({
      userId: 'u-attacker',
      actorId: 'u-fixated',
      ip: '198.51.100.13',
      details: { reason: 'fixation' },
    });
    expect(await theRow('created', victim.id)).toMatchObject({ userId: 'u-fixated' });
  });

  it('expired_idle and expired_absolute: once, by the system, from the request that found it', async () => {
    const idle = await login('u-expired');
    const absolute = await login('u-expired');
    await db.pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
      idle.id,
    ]);
    await db.pool.query(`UPDATE user_sessions SET absolute_expires_at = now() - interval '1 second' WHERE id = $1`, [
      absolute.id,
    ]);
    expect((await authenticated(idle.token, { ip: '198.51.100.14' })).outcome).toEqual({
      ok: false,
      reason: 'idle_timeout',
    });
    expect((await authenticated(absolute.token, { ip: '198.51.100.15' })).outcome).toEqual({
      ok: false,
      reason: 'absolute_timeout',
    });
    // Presenting the dead token again records nothing more.
    expect((await authenticated(idle.token)).outcome).toEqual({ ok: false, reason: 'invalid' });
    expect(await theRow('expired_idle', idle.id)).toMatchObject({
      userId: 'u-expired',
      actorId: null,
      ip: '198.51.100.14',
    });
    expect(await theRow('expired_absolute', absolute.id)).toMatchObject({
      userId: 'u-expired',
      actorId: null,
      ip: '198.51.100.15',
    });
  });

  it('ip_changed: not for a request whose address is unknown (client gone): no write, no audit row, the row keeps its address', async () => {
    const { id, token } = await login('u-gone', { ip: '192.0.2.10' });
    const before = (await db.pool.query('SELECT ip, version FROM user_sessions WHERE id = $1', [id])).rows[0];
    const { outcome } = await authenticated(token, { ip: null });
    expect(outcome.ok).toBe(true);
    const { rows } = await db.pool.query(
      `SELECT event FROM session_audit_log WHERE session_id = $1 AND event = 'ip_changed'`,
      [id],
    );
    expect(rows).toEqual([]);
    expect((await db.pool.query('SELECT ip, version FROM user_sessions WHERE id = $1', [id])).rows[0]).toEqual(before);
    // A new user agent from an unknown address: audited, without claiming the old address for it.
    await authenticated(token, { ip: null, userAgent: 'other-agent/2.0' });
    expect(await theRow('ua_changed', id)).toMatchObject({ ip: null, userAgent: 'other-agent/2.0' });
    // A real move is still recorded.
    await authenticated(token, { ip: '192.0.2.11', userAgent: 'other-agent/2.0' });
    expect((await theRow('ip_changed', id)).details).toEqual({ from: '192.0.2.10', to: '192.0.2.11' });
  });

  it('token_reuse_detected: a rotated-out token after the grace window revokes the session, once, by the system', async () => {
    const { token: oldToken, id } = await login('u-reuse');
    const { request } = await authenticated(oldToken);
    await validator.rotateToken(request, new FakeResponse(), { id }, tokenDigest(oldToken), 'interval'); // periodic: keeps a grace window
    await db.pool.query(`UPDATE user_sessions SET rotated_at = now() - interval '1 minute' WHERE id = $1`, [id]);
    expect((await authenticated(oldToken, { ip: '198.51.100.66' })).outcome).toEqual({ ok: false, reason: 'revoked' });
    expect((await authenticated(oldToken)).outcome).toEqual({ ok: false, reason: 'revoked' });
    expect(await theRow('token_reuse_detected', id)).toMatchObject({
      userId: 'u-reuse',
      actorId: null,
      ip: '198.51.100.66',
      details: { reason: 'token_reuse', generation: 0, current: 1, behind: 1 },
    });
    expect(await isLive(id)).toBe(false);
  });

  it('admin revoke-all: every session of the user, each row and the summary naming the admin', async () => {
    const all = [await login('u-disabled'), await login('u-disabled'), await login('u-disabled')];
    const bystander = await login('u-bystander');
    expect(
      await admin.revokeAllUserSessions('u-disabled', {
        actorId: 'u-admin',
        request: fakeRequest({ ip: '192.0.2.1' }),
      }),
    ).toBe(3);
    for (const s of all)
      expect(await theRow('revoked', s.id)).toMatchObject({
        actorId: 'u-admin',
        ip: '192.0.2.1',
        details: { reason: 'admin' },
      });
    expect(await theRow('revoked_all', null, 'u-disabled')).toMatchObject({
      actorId: 'u-admin',
      details: { reason: 'admin', count: 3, except: null },
    });
    expect(await admin.listUserSessions('u-disabled')).toEqual([]);
    expect((await admin.listUserSessions('u-bystander')).map((s) => s.id)).toEqual([bystander.id]);
  });

  describe('no change without its event: when the audit row is refused, the change rolls back and nothing is emitted', () => {
    /** A NOT VALID CHECK makes the audit insert of `event` fail inside the statement that makes the change. */
    const refusing = async (event: string, action: () => Promise<unknown>) => {
      await db.pool.query(
        `ALTER TABLE session_audit_log ADD CONSTRAINT test_refuse_event CHECK (event <> '${event}') NOT VALID`,
      );
      const emittedBefore = emitted.length;
      try {
        await expect(action()).rejects.toThrow(/test_refuse_event/);
      } finally {
        await db.pool.query('ALTER TABLE session_audit_log DROP CONSTRAINT test_refuse_event');
      }
      expect(emitted.length).toBe(emittedBefore);
    };
    const sessionCount = async (userId: string) =>
      (await db.pool.query('SELECT count(*)::int AS n FROM user_sessions WHERE user_id = $1', [userId])).rows[0].n;

    it('created', async () => {
      await refusing('created', () => login('u-atomic-created'));
      expect(await sessionCount('u-atomic-created')).toBe(0);
    });

    it('revoked (fixation inside a login): neither the new session nor the revocation happens', async () => {
      const planted = await login('u-atomic-planted');
      await refusing('revoked', () => login('u-atomic-fixated', { token: planted.token }));
      expect(await isLive(planted.id)).toBe(true);
      expect(await sessionCount('u-atomic-fixated')).toBe(0);
    });

    it('rotated', async () => {
      const { token, id } = await login('u-atomic-rotated');
      const { request } = await authenticated(token);
      await refusing('rotated', () => sessions.rotate(request, new FakeResponse()));
      expect(await store.lookupByTokenHash(createHash('sha256').update(token).digest())).toMatchObject({
        id,
        isCurrentToken: true,
        version: 1,
      });
    });

    it('logout', async () => {
      const { token, id } = await login('u-atomic-logout');
      const { request } = await authenticated(token);
      await refusing('logout', () => sessions.destroy(request, new FakeResponse()));
      expect(await isLive(id)).toBe(true);
    });

    it('revoked (one session, and inside a revoke-all)', async () => {
      const a = await login('u-atomic-revoked');
      const b = await login('u-atomic-revoked');
      await refusing('revoked', () => admin.revokeSession(a.id, { actorId: 'u-admin' }));
      await refusing('revoked', () => sessions.revokeAll('u-atomic-revoked'));
      expect(await isLive(a.id)).toBe(true);
      expect(await isLive(b.id)).toBe(true);
    });

    it('revoked_all', async () => {
      const a = await login('u-atomic-all');
      const b = await login('u-atomic-all');
      await refusing('revoked_all', () => admin.revokeAllUserSessions('u-atomic-all', { actorId: 'u-admin' }));
      expect(await isLive(a.id)).toBe(true);
      expect(await isLive(b.id)).toBe(true);
    });

    it.each(['expired_idle', 'expired_absolute'])(
      '%s: the expired row stays until its event can be written',
      async (event) => {
        const { token, id } = await login(`u-atomic-${event}`);
        const column = event === 'expired_idle' ? 'idle_expires_at' : 'absolute_expires_at';
        await db.pool.query(`UPDATE user_sessions SET ${column} = now() - interval '1 second' WHERE id = $1`, [id]);
        await refusing(event, () => authenticated(token));
        expect((await db.pool.query('SELECT 1 FROM user_sessions WHERE id = $1', [id])).rowCount).toBe(1);
        expect((await authenticated(token)).outcome).toMatchObject({ ok: false });
      },
    );

    it('token_reuse_detected', async () => {
      const { token: oldToken, id } = await login('u-atomic-reuse');
      const { request } = await authenticated(oldToken);
      await validator.rotateToken(request, new FakeResponse(), { id }, tokenDigest(oldToken), 'interval');
      await db.pool.query(`UPDATE user_sessions SET rotated_at = now() - interval '1 minute' WHERE id = $1`, [id]);
      await refusing('token_reuse_detected', () => authenticated(oldToken));
      expect(await isLive(id)).toBe(true);
    });
  });

  it('emitted every row written so far exactly once, and nothing that was not written', async () => {
    const { rows } = await db.pool.query(`SELECT ${ROW} FROM session_audit_log a ORDER BY a.id`);
    expect(rows.length).toBeGreaterThan(30);
    expect([...emitted].sort((a, b) => Number(a.id) - Number(b.id))).toEqual(rows.map(toAuditRecord));
  });

  it('an observer that throws fails neither the request nor the other observers (RxJS reports its error)', async () => {
    const reported: unknown[] = [];
    const previous = rxjsConfig.onUnhandledError;
    rxjsConfig.onUnhandledError = (error) => reported.push(error);
    const seen: string[] = [];
    const events = moduleRef.get(SessionEvents);
    const faulty = events.on('created').subscribe(() => {
      throw new Error('alerting is down');
    });
    const fine = events.on('created', 'logout').subscribe((e) => seen.push(e.sessionId!));
    try {
      const { id } = await login('u-observed');
      expect(seen).toEqual([id]);
      await eventually(async () => reported.length > 0, 1_000, 1); // rxjs reports it on a timer
      expect(reported).toEqual([new Error('alerting is down')]);
    } finally {
      faulty.unsubscribe();
      fine.unsubscribe();
      rxjsConfig.onUnhandledError = previous;
    }
  });

  it('holds no token and no token hash in any audit row', async () => {
    const { rows } = await db.pool.query(`SELECT string_agg(to_jsonb(a)::text, ' ') AS text FROM session_audit_log a`);
    for (const token of tokens) {
      const hash = createHash('sha256').update(token).digest();
      for (const needle of [token, hash.toString('hex'), hash.toString('base64'), hash.toString('base64url')])
        expect(rows[0].text).not.toContain(needle);
    }
  });
});
