import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg, { type QueryConfig } from 'pg';
import { SessionPrivacyService } from '../../src/session/index.js';
import { PRIVACY_SQL } from '../../src/session/privacy/privacy.sql.js';
import { SessionPrivacyStore } from '../../src/session/privacy/privacy.store.js';
import { AggregatedAuditLog } from '../../src/session/security/aggregated-audit.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { generateToken, hashToken } from '../../src/session/token/session-token.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fakeRequest } from '../support/fake-http.js';
import { createHostApp, type HostApp } from '../support/host-app.js';

const MINUTE = 60_000;
const ADMIN_IP = '203.0.113.201';
const ADMIN_UA = 'EraserConsole/2.0';

/** Erasure and the people around the erased user: the eraser, an impersonating admin, a racing login, buffered rows. */
describe('SessionPrivacyService.eraseUser and the other actors, on real PostgreSQL', () => {
  let db: TestDatabase;
  let host: HostApp;
  let store: SessionStore;
  let privacy: SessionPrivacyService;
  beforeAll(async () => {
    db = await createTestDatabase();
    host = await createHostApp({ url: db.url });
    store = host.moduleRef.get(SessionStore);
    privacy = host.moduleRef.get(SessionPrivacyService);
  });
  afterAll(async () => {
    await host?.app.close();
    await db?.drop();
  });

  async function session(userId: string, userAgent = 'ActorsProbe/1.0') {
    const row = await store.create({
      tokenHash: hashToken(generateToken()),
      replacesTokenHash: null,
      userId,
      data: { owner: userId },
      idleTimeoutMs: 30 * MINUTE,
      absoluteTimeoutMs: 60 * MINUTE,
      ip: '198.51.100.31',
      userAgent,
    });
    return row.id;
  }

  async function erasureRow(pseudonym: string) {
    const { rows } = await db.pool.query(
      `SELECT actor_id, ip, user_agent FROM session_audit_log WHERE event = 'personal_data_erased' AND user_id = $1`,
      [pseudonym],
    );
    return rows;
  }

  it("records the real eraser and their request on personal_data_erased, never the erased user's pseudonym", async () => {
    await session('u-actors-subject');
    const result = await privacy.eraseUser('u-actors-subject', {
      actorId: 'u-actors-admin',
      request: fakeRequest({ ip: ADMIN_IP, userAgent: ADMIN_UA }),
    });
    expect(await erasureRow(result.pseudonym)).toEqual([
      { actor_id: 'u-actors-admin', ip: ADMIN_IP, user_agent: ADMIN_UA },
    ]);
  });

  it('ends a live impersonation of the user, audited impersonation_ended with the admin as actor', async () => {
    const adminSession = await session('u-actors-support');
    const started = await store.startImpersonation({
      impersonatorSessionId: adminSession,
      userId: 'u-actors-impersonated',
      tokenHash: hashToken(generateToken()),
      idleTimeoutMs: 10 * MINUTE,
      maxDurationMs: 10 * MINUTE,
      reason: 'ticket 9',
      context: { ip: ADMIN_IP, userAgent: ADMIN_UA },
    });
    const result = await privacy.eraseUser('u-actors-impersonated', { actorId: 'u-actors-dpo' });

    expect(result.sessionsDeleted).toBe(1);
    const { rows } = await db.pool.query(
      `SELECT event, session_id, user_id, actor_id, details FROM session_audit_log
       WHERE event LIKE 'impersonation_%' AND session_id = $1 ORDER BY id`,
      [started!.id],
    );
    expect(rows.map((row) => [row.event, row.user_id, row.actor_id])).toEqual([
      ['impersonation_started', result.pseudonym, 'u-actors-support'],
      ['impersonation_ended', result.pseudonym, 'u-actors-support'],
    ]);
    expect(rows[1].details).toEqual({
      reason: 'user_erased',
      sessionId: started!.id,
      impersonatorSessionId: adminSession,
    });
    // The admin's own session stays, as a revocation of the impersonation leaves it.
    const { rows: admin } = await db.pool.query(`SELECT revoked_at FROM user_sessions WHERE id = $1`, [adminSession]);
    expect(admin).toEqual([{ revoked_at: null }]);
  });

  it('deletes a session whose login committed while the erasure ran, counting it', async () => {
    // The erasure's connection commits a login of the user, from another connection, just before its audit step.
    let lateId: string | undefined;
    const racing = new pg.Pool({ connectionString: db.url, max: 2 });
    racing.on('acquire', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: unknown }).query = (config: QueryConfig, ...rest: unknown[]) => {
        if (config?.text !== PRIVACY_SQL.anonymiseAudit.text || lateId) return query(config, ...rest);
        void session('u-actors-racing').then((id) => {
          lateId = id;
          query(config, ...rest);
        });
        return undefined;
      };
    });
    // No session of the user yet: a login then waits on no row the erasure has locked.
    const service = new SessionPrivacyService(new SessionPrivacyStore(racing), store);
    try {
      const result = await service.eraseUser('u-actors-racing', { actorId: 'u-actors-dpo' });

      expect(lateId).toBeDefined();
      expect(result.sessionsDeleted).toBe(1);
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions WHERE user_id = $1`, [
        'u-actors-racing',
      ]);
      expect(rows[0].n).toBe(0);
      // Its `created` row, pseudonymised by the audit step, names no live session.
      const { rows: created } = await db.pool.query(
        `SELECT user_id FROM session_audit_log WHERE event = 'created' AND session_id = $1`,
        [lateId],
      );
      expect(created).toEqual([{ user_id: result.pseudonym }]);
    } finally {
      await racing.end();
    }
  });

  it("drops the instance's buffered tallies of the user: nothing of theirs is written after the erasure", async () => {
    const aggregated = host.moduleRef.get(AggregatedAuditLog);
    const occurrence = { event: 'csrf_failed', source: '198.51.100.32', reason: 'csrf_token_missing' } as const;
    aggregated.record({ ...occurrence, userId: 'u-actors-buffered', userAgent: 'BufferedProbe/1.0' });
    aggregated.record({ ...occurrence, source: '198.51.100.33', userId: 'u-actors-kept' });

    await privacy.eraseUser('u-actors-buffered', { actorId: 'u-actors-dpo' });
    await aggregated.flush({ all: true });

    const { rows } = await db.pool.query(
      `SELECT user_id FROM session_audit_log WHERE event = 'csrf_failed' ORDER BY id`,
    );
    expect(rows).toEqual([{ user_id: 'u-actors-kept' }]);
  });
});
