import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ADAPTERS, cookie, login, startDemo, type RunningDemo } from '../support/demo.js';

const UUID = '7a1c2a4e-0d0e-4c55-9a51-3d6c0b5f9e11';

describe.each(ADAPTERS)('admin HTTP API in the demo (%s)', (adapter) => {
  let demo: RunningDemo;
  let admin: string;
  let alice: { token: string; sessionId: string };
  beforeAll(async () => {
    demo = await startDemo(adapter);
    alice = await login(demo.server, 'alice');
    admin = (await login(demo.server, 'admin')).token;
  });
  afterAll(async () => demo?.close());

  const ROUTES: Array<['get' | 'delete', string]> = [
    ['get', '/admin/sessions/audit'],
    ['get', '/admin/sessions/audit/summary?from=2025-01-01&to=2025-01-02&bucket=hour'],
    ['get', '/admin/users/u-alice/sessions'],
    ['delete', `/admin/sessions/${UUID}`],
    ['delete', '/admin/users/u-alice/sessions'],
  ];

  it.each(ROUTES)('%s %s: 401 without a session, 403 for a user who is not an admin', async (method, path) => {
    const none = await request(demo.server)[method](path).expect(401);
    expect(none.body.reason).toBe('missing');
    await request(demo.server)[method](path).set(cookie('not-a-token')).expect(401);
    const forbidden = await request(demo.server)[method](path).set(cookie(alice.token)).expect(403);
    expect(forbidden.body).toMatchObject({ statusCode: 403, error: 'Forbidden' });
    // Alice's session is untouched by her failed attempts.
    await request(demo.server).get('/me').set(cookie(alice.token)).expect(200);
  });

  it('queries the audit log: filters, newest first, whole rows, never cached', async () => {
    const response = await request(demo.server)
      .get('/admin/sessions/audit')
      .query({ userId: 'u-alice', events: 'created' })
      .set(cookie(admin))
      .expect(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.body.nextCursor).toBeNull();
    expect(response.body.items).toEqual([
      {
        id: expect.stringMatching(/^\d+$/),
        occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        event: 'created',
        sessionId: alice.sessionId,
        userId: 'u-alice',
        actorId: 'u-alice',
        ip: expect.any(String),
        userAgent: null,
        details: {},
      },
    ]);
  });

  it('pages with the cursor over HTTP; events as a list or repeated', async () => {
    for (let i = 0; i < 3; i++) await login(demo.server, 'bob');
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await request(demo.server)
        .get('/admin/sessions/audit')
        .query({ userId: 'u-bob', limit: '1', ...(cursor ? { cursor } : {}) })
        .set(cookie(admin))
        .expect(200);
      seen.push(...page.body.items.map((i: { id: string }) => i.id));
      cursor = page.body.nextCursor ?? undefined;
    } while (cursor);
    const all = await request(demo.server)
      .get('/admin/sessions/audit')
      .query({ userId: 'u-bob' })
      .set(cookie(admin))
      .expect(200);
    expect(seen).toEqual(all.body.items.map((i: { id: string }) => i.id));
    expect(seen.length).toBeGreaterThanOrEqual(3);
    const repeated = await request(demo.server)
      .get('/admin/sessions/audit?userId=u-bob&events=created&events=logout')
      .set(cookie(admin))
      .expect(200);
    const listed = await request(demo.server)
      .get('/admin/sessions/audit?userId=u-bob&events=created,logout')
      .set(cookie(admin))
      .expect(200);
    expect(repeated.body).toEqual(listed.body);
  });

  it('summarises counts per event per bucket', async () => {
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const response = await request(demo.server)
      .get('/admin/sessions/audit/summary')
      .query({ from, to, bucket: 'hour' })
      .set(cookie(admin))
      .expect(200);
    expect(response.body.totals.created).toBeGreaterThanOrEqual(5);
    expect(response.body.buckets[0]).toEqual({
      start: expect.stringMatching(/:00:00\.000Z$/),
      counts: expect.any(Object),
    });
  });

  it.each([
    ['?limit=0', /limit must not be less than 1/],
    ['?limit=501', /limit must not be greater than 500/],
    ['?events=created,bogus', /each value in events must be one of/],
    ['?sessionId=%27%20OR%201%3D1%20--', /sessionId must be a session id/],
    ['?ip=1.2.3.4%27%3B%20DROP%20TABLE%20session_audit_log', /ip must be an IPv4 or IPv6 address/],
    ['?from=yesterday', /from must be an ISO 8601 date/],
    ['?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z', /to must be after from/],
    ['?userId=a&userId=b', /userId must be a string/],
    ['?userId=a%00b', /userId must be 1..255 characters without control characters/],
    ['?userId[$ne]=x', /should not exist|userId must be a string/],
    ['?orderBy=id', /property orderBy should not exist/],
    ['?cursor=bm90LWEtY3Vyc29y', /cursor is malformed/],
    ['/summary?from=2025-01-01&to=2025-06-01&bucket=hour', /at most 92 days/],
    ['/summary?from=2025-01-01&to=2025-01-02&bucket=week', /bucket must be one of/],
  ])('answers 400 with the reason: %s', async (query, reason) => {
    const response = await request(demo.server).get(`/admin/sessions/audit${query}`).set(cookie(admin)).expect(400);
    expect(response.body.message.join('\n')).toMatch(reason);
  });

  it("lists any user's sessions, never tokens", async () => {
    const response = await request(demo.server).get('/admin/users/u-alice/sessions').set(cookie(admin)).expect(200);
    expect(response.body.map((s: { id: string }) => s.id)).toContain(alice.sessionId);
    expect(JSON.stringify(response.body)).not.toContain(alice.token);
    await request(demo.server).get('/admin/users/nobody/sessions').set(cookie(admin)).expect(200, []);
    await request(demo.server).get('/admin/users/a%00b/sessions').set(cookie(admin)).expect(400);
  });

  it('revokes one session of anyone, audited with the admin as actor', async () => {
    const victim = await login(demo.server, 'alice');
    await request(demo.server)
      .delete(`/admin/sessions/${victim.sessionId}`)
      .set(cookie(admin))
      .set('User-Agent', 'admin-console/1')
      .expect(204);
    const replay = await request(demo.server).get('/me').set(cookie(victim.token)).expect(401);
    expect(replay.body.reason).toBe('revoked');
    await request(demo.server).delete(`/admin/sessions/${victim.sessionId}`).set(cookie(admin)).expect(404);
    await request(demo.server).delete(`/admin/sessions/${UUID}`).set(cookie(admin)).expect(404);
    await request(demo.server).delete('/admin/sessions/not-a-uuid').set(cookie(admin)).expect(400);
    const audit = await request(demo.server)
      .get('/admin/sessions/audit')
      .query({ sessionId: victim.sessionId, events: 'revoked' })
      .set(cookie(admin))
      .expect(200);
    expect(audit.body.items).toEqual([
      expect.objectContaining({
        userId: 'u-alice',
        actorId: 'u-admin',
        userAgent: 'admin-console/1',
        ip: expect.any(String),
        details: { reason: 'admin' },
      }),
    ]);
  });

  it("revokes all of a user's sessions (account disabled), audited per session and as revoked_all", async () => {
    const bob = [await login(demo.server, 'bob'), await login(demo.server, 'bob')];
    const live = (await request(demo.server).get('/admin/users/u-bob/sessions').set(cookie(admin)).expect(200)).body
      .length;
    const response = await request(demo.server).delete('/admin/users/u-bob/sessions').set(cookie(admin)).expect(200);
    expect(response.body).toEqual({ revoked: live });
    for (const s of bob) await request(demo.server).get('/me').set(cookie(s.token)).expect(401);
    await request(demo.server).get('/admin/users/u-bob/sessions').set(cookie(admin)).expect(200, []);
    await request(demo.server).get('/me').set(cookie(alice.token)).expect(200);
    const audit = await request(demo.server)
      .get('/admin/sessions/audit')
      .query({ actorId: 'u-admin', events: 'revoked_all' })
      .set(cookie(admin))
      .expect(200);
    expect(audit.body.items[0]).toMatchObject({
      userId: 'u-bob',
      sessionId: null,
      details: { reason: 'admin', count: live },
    });
  });
});
