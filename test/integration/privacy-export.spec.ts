import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import {
  MAX_EXPORTED_AUDIT_EVENTS,
  MAX_EXPORTED_SESSIONS,
  SessionAuditService,
  SessionPrivacyService,
} from '../../src/session/index.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { generateToken, hashToken } from '../../src/session/token/session-token.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createHostApp, type HostApp } from '../support/host-app.js';

const MINUTE = 60_000;

describe('SessionPrivacyService.exportUser on real PostgreSQL', () => {
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

  async function session(userId: string | null, data: Record<string, unknown>, replaces: string | null = null) {
    const token = generateToken();
    const row = await store.create({
      tokenHash: hashToken(token),
      replacesTokenHash: replaces === null ? null : hashToken(replaces),
      userId,
      data,
      idleTimeoutMs: 30 * MINUTE,
      absoluteTimeoutMs: 60 * MINUTE,
      ip: '198.51.100.9',
      userAgent: 'ExportProbe/1.0',
    });
    return { token, id: row.id };
  }

  it('holds every session of the user (live, revoked, guest, impersonated) with its data, and their audit events as the audit API shows them', async () => {
    const guest = await session(null, { cart: ['book'] });
    const phone = await session('u-export', { theme: 'dark' }, guest.token);
    const laptop = await session('u-export', { lang: 'fr' });
    await store.revoke(laptop.id, 'user', { actorId: 'u-export' });
    const admin = await session('u-support', {});
    const impersonation = await store.startImpersonation({
      impersonatorSessionId: admin.id,
      userId: 'u-export',
      tokenHash: hashToken(generateToken()),
      idleTimeoutMs: 10 * MINUTE,
      maxDurationMs: 10 * MINUTE,
      reason: 'ticket 7',
      context: { ip: '203.0.113.1', userAgent: 'Support/1.0' },
    });
    await session('u-someone-else', { secret: 'not yours' });

    const exported = await privacy.exportUser('u-export');

    expect(exported.userId).toBe('u-export');
    expect(exported.truncated).toEqual({ sessions: false, auditEvents: false });
    const byId = Object.fromEntries(exported.sessions.map((s) => [s.id, s]));
    expect(Object.keys(byId).sort()).toEqual([guest.id, phone.id, laptop.id, impersonation!.id].sort());
    expect(byId[phone.id]).toEqual({
      id: phone.id,
      userId: 'u-export',
      guest: false,
      createdAt: expect.any(Date),
      lastSeenAt: expect.any(Date),
      authenticatedAt: expect.any(Date),
      idleExpiresAt: expect.any(Date),
      absoluteExpiresAt: expect.any(Date),
      revokedAt: null,
      revokeReason: null,
      lifetime: 'default',
      ip: '198.51.100.9',
      userAgent: 'ExportProbe/1.0',
      impersonatorId: null,
      impersonatorSessionId: null,
      data: { theme: 'dark' },
    });
    expect(byId[guest.id]).toMatchObject({ userId: null, guest: true, revokeReason: 'guest_upgraded' });
    expect(byId[laptop.id]).toMatchObject({ revokedAt: expect.any(Date), revokeReason: 'user', data: {} });
    expect(byId[impersonation!.id]).toMatchObject({
      userId: 'u-export',
      impersonatorId: 'u-support',
      impersonatorSessionId: admin.id,
    });

    const audit = await host.moduleRef.get(SessionAuditService).query({ userId: 'u-export', limit: 500 });
    expect(exported.auditEvents.filter((e) => e.userId === 'u-export')).toEqual(audit.items);
    // ...plus the guest session's own rows, from before the login.
    expect(exported.auditEvents.filter((e) => e.userId !== 'u-export')).toEqual([
      expect.objectContaining({ event: 'guest_created', sessionId: guest.id, userId: null }),
    ]);
  });

  it("an admin's export holds their acts on others, not the others' data, address or user agent", async () => {
    const TARGET_UA = 'TargetSecretBrowser/3.0';
    const adminSession = await session('u-export-admin', { mine: true });
    const target = await store.create({
      tokenHash: hashToken(generateToken()),
      replacesTokenHash: null,
      userId: 'u-export-target',
      data: { secret: 'the target user only' },
      idleTimeoutMs: 30 * MINUTE,
      absoluteTimeoutMs: 60 * MINUTE,
      ip: '192.0.2.77',
      userAgent: TARGET_UA,
    });
    // The target's own client change, then a revocation attributed to the admin with the target's
    // request (as revoke's attribution names the impersonator): rows with the admin as actor only.
    await store.recordClientChange(target.id, '192.0.2.78', `${TARGET_UA} (new)`);
    await store.revoke(target.id, 'admin', { actorId: 'u-export-admin', ip: '192.0.2.79', userAgent: TARGET_UA });
    const impersonation = await store.startImpersonation({
      impersonatorSessionId: adminSession.id,
      userId: 'u-export-target',
      tokenHash: hashToken(generateToken()),
      idleTimeoutMs: 10 * MINUTE,
      maxDurationMs: 10 * MINUTE,
      reason: 'ticket 8',
      context: { ip: '203.0.113.9', userAgent: 'ExportAdmin/1.0' },
    });
    await db.pool.query(`UPDATE user_sessions SET data = $2 WHERE id = $1`, [
      impersonation!.id,
      { secret: 'the target user only' },
    ]);

    const exported = await privacy.exportUser('u-export-admin');

    const text = JSON.stringify(exported);
    for (const needle of [TARGET_UA, '192.0.2.7', 'the target user only'])
      expect([needle, text.includes(needle)]).toEqual([needle, false]);
    const byId = Object.fromEntries(exported.sessions.map((s) => [s.id, s]));
    expect(byId[adminSession.id]).toMatchObject({ data: { mine: true }, userAgent: 'ExportProbe/1.0' });
    // The impersonation session they started: the target's data, and no address or user agent.
    expect(byId[impersonation!.id]).toMatchObject({ userId: 'u-export-target', data: {}, ip: null, userAgent: null });
    // The facts of the admin's acts stay.
    expect(
      exported.auditEvents
        .filter((e) => e.userId === 'u-export-target')
        .map((e) => e.event)
        .sort(),
    ).toEqual(['impersonation_started', 'revoked']);
    expect(exported.auditEvents.find((e) => e.event === 'impersonation_started')?.details).toMatchObject({
      reason: 'ticket 8',
    });
    // The target's own export still holds all of it.
    expect(JSON.stringify(await privacy.exportUser('u-export-target'))).toContain(TARGET_UA);
  });

  it('never holds a token or a token hash, of any generation', async () => {
    const first = await session('u-tokens', { a: 1 });
    const rotated = generateToken();
    await store.rotate({
      id: first.id,
      oldTokenHash: hashToken(first.token),
      newTokenHash: hashToken(rotated),
      idleTimeoutMs: 30 * MINUTE,
      reason: 'interval',
      reauthenticated: false,
      context: {},
    });
    const text = JSON.stringify(await privacy.exportUser('u-tokens'));
    expect(text).toContain(first.id);
    for (const token of [first.token, rotated]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(hashToken(token).toString('hex'));
      expect(text).not.toContain(hashToken(token).toString('base64'));
      expect(text).not.toContain(hashToken(token).toString('base64url'));
    }
    expect(text).not.toMatch(/token_?hash|tokenHash|token_generation/i);
  });

  it(`is bounded: the newest ${MAX_EXPORTED_SESSIONS} sessions and ${MAX_EXPORTED_AUDIT_EVENTS} events, saying so`, async () => {
    await db.pool.query(
      `INSERT INTO user_sessions (token_hash, user_id, created_at, idle_expires_at, absolute_expires_at)
       SELECT sha256(gen_random_uuid()::text::bytea), 'u-many', now() - i * interval '1 second',
              now() + interval '1 hour', now() + interval '1 hour'
       FROM generate_series(1, $1) i`,
      [MAX_EXPORTED_SESSIONS + 1],
    );
    await db.pool.query(
      `INSERT INTO session_audit_log (event, user_id, occurred_at, details)
       SELECT 'created', 'u-many', now() - i * interval '1 second', '{}'::jsonb FROM generate_series(1, $1) i`,
      [MAX_EXPORTED_AUDIT_EVENTS + 1],
    );
    const exported = await privacy.exportUser('u-many');
    expect(exported.truncated).toEqual({ sessions: true, auditEvents: true });
    expect(exported.sessions).toHaveLength(MAX_EXPORTED_SESSIONS);
    expect(exported.auditEvents).toHaveLength(MAX_EXPORTED_AUDIT_EVENTS);
    const times = exported.auditEvents.map((e) => e.occurredAt.getTime());
    expect(times).toEqual([...times].sort((x, y) => y - x)); // newest first
  });

  it('an unknown user has an empty export; a malformed id is a 400', async () => {
    expect(await privacy.exportUser('u-nobody')).toMatchObject({
      sessions: [],
      auditEvents: [],
      truncated: { sessions: false, auditEvents: false },
    });
    await expect(privacy.exportUser('x'.repeat(256))).rejects.toBeInstanceOf(BadRequestException);
    await expect(privacy.exportUser(42 as never)).rejects.toBeInstanceOf(BadRequestException);
  });
});
