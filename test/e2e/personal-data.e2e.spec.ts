import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { hashToken } from '../../src/session/token/session-token.js';
import { performance } from 'node:perf_hooks';
import { ADAPTERS, bareCookie, cookie, login, startDemo, type LoggedIn, type RunningDemo } from '../support/demo.js';
import { closedWithin, openWs } from '../support/sockets.js';

// The demo's clients all come from loopback, so the user agent is what marks a user's rows.
const PROBE_UA = 'PersonalDataProbe/1.0 (e2e)';

describe.each(ADAPTERS)('personal data in the admin API of the demo (%s)', (adapter) => {
  let demo: RunningDemo;
  let admin: string;
  let alice: LoggedIn;
  let wsUrl: string;
  beforeAll(async () => {
    demo = await startDemo(adapter);
    await demo.app.listen(0, '127.0.0.1'); // for the demo's WebSocket
    wsUrl = `ws://127.0.0.1:${(demo.server.address() as { port: number }).port}/ws`;
    alice = await login(demo.server, 'alice', { 'User-Agent': PROBE_UA });
    admin = (await login(demo.server, 'admin')).token;
  });
  afterAll(async () => demo?.close());

  /** Rows of a table holding `needle` in any column. */
  async function rowsWith(table: string, needle: string): Promise<number> {
    const { rows } = await demo.db.pool.query(
      `SELECT count(*)::int AS n FROM ${table} t WHERE strpos(row_to_json(t)::text, $1) > 0`,
      [needle],
    );
    return rows[0].n;
  }

  it.each([
    ['get', '/admin/users/u-alice/personal-data'],
    ['delete', '/admin/users/u-alice/personal-data'],
    ['delete', '/admin/users/u-alice/personal-data?mode=delete'],
  ] as Array<['get' | 'delete', string]>)(
    '%s %s: 401 without a session, 403 for a user who is not an admin',
    async (method, path) => {
      expect((await request(demo.server)[method](path).expect(401)).body.reason).toBe('missing');
      await request(demo.server)[method](path).set(cookie(alice.token)).expect(403);
      await request(demo.server).get('/me').set(cookie(alice.token)).expect(200); // nothing erased
    },
  );

  it("DELETE of the admin's own user id is a 403: an admin cannot erase their own trail", async () => {
    const before = await rowsWith('session_audit_log', 'u-admin');
    for (const mode of ['anonymise', 'delete']) {
      const response = await request(demo.server)
        .delete(`/admin/users/u-admin/personal-data?mode=${mode}`)
        .set(cookie(admin))
        .expect(403);
      expect(response.body).toMatchObject({
        reason: 'self_erasure',
        message: expect.stringContaining('another admin'),
      });
    }
    await request(demo.server).get('/me').set(cookie(admin)).expect(200);
    expect(await rowsWith('session_audit_log', 'u-admin')).toBe(before);
  });

  it('GET exports the sessions and audit events, never cached, never a token or its hash', async () => {
    // The requests above sent no user agent (ua_changed); this one brings the probe back (ua_changed again).
    await request(demo.server)
      .get('/me')
      .set({ ...cookie(alice.token), 'User-Agent': PROBE_UA })
      .expect(200);
    const response = await request(demo.server)
      .get('/admin/users/u-alice/personal-data')
      .set(cookie(admin))
      .expect(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.body).toMatchObject({
      userId: 'u-alice',
      exportedAt: expect.any(String),
      sessions: [{ id: alice.sessionId, userId: 'u-alice', guest: false, userAgent: PROBE_UA, revokedAt: null }],
      truncated: { sessions: false, auditEvents: false },
    });
    expect(response.body.auditEvents).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ event: 'ua_changed', details: { from: PROBE_UA, to: null } }),
        expect.objectContaining({
          event: 'created',
          sessionId: alice.sessionId,
          userId: 'u-alice',
          userAgent: PROBE_UA,
        }),
      ]),
    );
    for (const secret of [
      alice.token,
      hashToken(alice.token).toString('hex'),
      hashToken(alice.token).toString('base64'),
    ])
      expect(response.text).not.toContain(secret);
    expect(response.text).not.toMatch(/token_?hash/i);
  });

  it.each([
    ['delete', '/admin/users/u-alice/personal-data?mode=shred', /mode must be one of: anonymise, delete/],
    ['delete', '/admin/users/u-alice/personal-data?mode=delete&mode=delete', /mode must be one of/],
    ['delete', '/admin/users/u-alice/personal-data?force=true', /property force should not exist/],
    ['delete', `/admin/users/${'x'.repeat(256)}/personal-data`, /user id must be 1..255 characters/],
    ['get', `/admin/users/${'x'.repeat(256)}/personal-data`, /user id must be 1..255 characters/],
    ['get', '/admin/users/a%00b/personal-data', /user id must be 1..255 characters/],
    ['delete', `/admin/users/anon:${'0'.repeat(32)}/personal-data`, /already a pseudonym/],
  ] as Array<['get' | 'delete', string, RegExp]>)(
    '%s %s: 400 with the reason, nothing erased',
    async (method, path, reason) => {
      // Fastify refuses a route parameter over 100 characters itself (maxParamLength): 414.
      const tooLong = adapter === 'fastify' && path.includes('x'.repeat(101));
      const status = tooLong ? 414 : 400;
      const response = await request(demo.server)[method](path).set(cookie(admin)).expect(status);
      if (!tooLong) expect(response.body.message).toEqual(expect.arrayContaining([expect.stringMatching(reason)]));
      await request(demo.server).get('/me').set(cookie(alice.token)).expect(200);
    },
  );

  it("DELETE erases: the token is refused at once, no row holds the user's id or user agent, the erasure is audited", async () => {
    await request(demo.server).get('/me').set(cookie(alice.token)).expect(200);
    const response = await request(demo.server)
      .delete('/admin/users/u-alice/personal-data')
      .set(cookie(admin))
      .expect(200);
    expect(response.body).toEqual({
      mode: 'anonymise',
      pseudonym: expect.stringMatching(/^anon:[0-9a-f]{32}$/),
      sessionsDeleted: 1,
      retiredTokensDeleted: 0,
      auditRowsAnonymised: expect.any(Number),
      auditRowsDeleted: 0,
    });
    expect(response.body.auditRowsAnonymised).toBeGreaterThanOrEqual(1);
    await request(demo.server).get('/me').set(cookie(alice.token)).expect(401);
    for (const table of ['user_sessions', 'session_audit_log']) {
      expect([table, await rowsWith(table, PROBE_UA)]).toEqual([table, 0]);
      expect([table, await rowsWith(table, 'u-alice')]).toEqual([table, 0]);
    }
    const audit = await request(demo.server)
      .get('/admin/sessions/audit')
      .query({ userId: response.body.pseudonym, events: 'personal_data_erased' })
      .set(cookie(admin))
      .expect(200);
    expect(audit.body.items).toEqual([
      expect.objectContaining({
        event: 'personal_data_erased',
        userId: response.body.pseudonym,
        actorId: 'u-admin',
        details: {
          mode: 'anonymise',
          sessionsDeleted: 1,
          retiredTokensDeleted: 0,
          auditRowsAnonymised: response.body.auditRowsAnonymised,
          auditRowsDeleted: 0,
        },
      }),
    ]);

    const again = await request(demo.server)
      .delete('/admin/users/u-alice/personal-data')
      .set(cookie(admin))
      .expect(200);
    expect(again.body).toMatchObject({
      pseudonym: response.body.pseudonym,
      sessionsDeleted: 0,
      auditRowsAnonymised: 0,
    });
    // The admin's own session is untouched.
    await request(demo.server).get('/me').set(cookie(admin)).expect(200);
  });

  it("DELETE ?mode=delete removes the user's audit rows, leaving only the erasure's own; the user's socket closes within 1 s", async () => {
    const bob = await login(demo.server, 'bob', { 'User-Agent': PROBE_UA });
    const { closed } = await openWs(wsUrl, { ...bareCookie(bob.token), 'User-Agent': PROBE_UA });
    const erasedAt = performance.now();
    const response = await request(demo.server)
      .delete('/admin/users/u-bob/personal-data?mode=delete')
      .set(cookie(admin))
      .expect(200);
    // The session row is gone, as after a logout: the socket closes the same way, within 1 s by
    // NOTIFY; behind a transaction pooler (no LISTEN) within sockets.recheckInterval (10 s) instead.
    const limitMs = process.env.NPS_TEST_POOL_MODE === 'transaction' ? 12_000 : 1_000;
    expect(await closedWithin(closed, erasedAt, limitMs)).toMatchObject({ code: 4401, reason: 'logout' });
    expect(response.body).toMatchObject({ mode: 'delete', sessionsDeleted: 1, auditRowsAnonymised: 0 });
    expect(response.body.auditRowsDeleted).toBeGreaterThanOrEqual(1);
    await request(demo.server).get('/me').set(cookie(bob.token)).expect(401);
    const { rows } = await demo.db.pool.query(`SELECT event FROM session_audit_log WHERE user_id = $1`, [
      response.body.pseudonym,
    ]);
    expect(rows).toEqual([{ event: 'personal_data_erased' }]);
    expect(await rowsWith('session_audit_log', 'u-bob')).toBe(0);
    expect(await rowsWith('session_audit_log', PROBE_UA)).toBe(0);
  });
});
