import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { captureNestLogs, type CapturingLogger } from '../support/log-capture.js';
import {
  ADAPTERS,
  bareCookie,
  cookie,
  eventually,
  sessionCookie,
  startDemo,
  type RunningDemo,
} from '../support/demo.js';

const KEY_OLD = randomBytes(32).toString('base64');
const KEY_NEW = randomBytes(32).toString('base64');
const secret = () => `card-${randomBytes(6).toString('hex')}`;

const login = (demo: RunningDemo, headers: Record<string, string> = {}) =>
  request(demo.server)
    .post('/auth/login')
    .set(headers)
    .send({ username: 'alice', password: 'alice-password' })
    .expect(200);

describe.each(ADAPTERS)('session data encrypted at rest in the demo (%s)', (adapter) => {
  let demo: RunningDemo;
  let rotated: RunningDemo | undefined;
  let logs: CapturingLogger;
  beforeAll(async () => {
    demo = await startDemo(adapter, { SESSION_ENCRYPTION_KEYS: `2026-06:${KEY_OLD}`, PURGE_CRON: 'off' });
  });
  afterAll(async () => {
    await rotated?.app.close();
    await demo?.close();
  });

  const rowText = async (id: string) =>
    (await demo.db.pool.query('SELECT data::text AS text FROM user_sessions WHERE id = $1', [id])).rows[0].text;
  /** The session a token belongs to, by the device list's `current` entry. */
  const idOf = async (token: string) => {
    const devices = await request(demo.server).get('/sessions').set(cookie(token)).expect(200);
    return (devices.body as { id: string; current: boolean }[]).find((s) => s.current)!.id;
  };

  it("a guest's cart and then the user's session hold only ciphertext; the app reads its data back", async () => {
    const item = secret();
    const guest = await request(demo.server)
      .patch('/cart')
      .send({ [item]: 1 })
      .expect(200);
    const guestToken = sessionCookie(guest)!;
    const { rows } = await demo.db.pool.query(`SELECT id, data::text AS text FROM user_sessions WHERE user_id IS NULL`);
    expect(rows).toHaveLength(1);
    expect(rows[0].text).not.toContain(item);
    expect(rows[0].text).toMatch(/"cart": "v1\.2026-06\./);

    // Login carries the cart into the user's session, sealed again to that session's id.
    const user = sessionCookie(await login(demo, bareCookie(guestToken)))!;
    expect((await request(demo.server).get('/cart').set(cookie(user)).expect(200)).body).toEqual({ [item]: 1 });
    await request(demo.server).patch('/cart').set(cookie(user)).send({ more: 2 }).expect(200);
    const data = await request(demo.server).get('/me/data').set(cookie(user)).expect(200);
    expect(data.body).toEqual({ cart: { [item]: 1, more: 2 } });
    const text = (await demo.db.pool.query(`SELECT string_agg(data::text, ' ') AS t FROM user_sessions`)).rows[0].t;
    expect(text).not.toContain(item);
  });

  it('after a key rotation (new key first, old one second) sessions stay logged in; writes use the new key', async () => {
    const item = secret();
    const token = sessionCookie(await login(demo))!;
    await request(demo.server)
      .patch('/cart')
      .set(cookie(token))
      .send({ [item]: 1 })
      .expect(200);
    const id = await idOf(token);
    // A second instance on the same database, as during a rolling deploy of the new key list.
    rotated = await startDemo(
      adapter,
      { SESSION_ENCRYPTION_KEYS: `2026-12:${KEY_NEW},2026-06:${KEY_OLD}`, PURGE_CRON: 'off' },
      { url: demo.db.url },
    );
    const read = await request(rotated.server).get('/me/data').set(cookie(token)).expect(200);
    expect(read.body).toEqual({ cart: { [item]: 1 } });
    await request(rotated.server).patch('/cart').set(cookie(token)).send({ late: 1 }).expect(200);
    expect(await rowText(id)).toMatch(/"cart": "v1\.2026-12\./);
    await rotated.app.close();
    rotated = undefined;
  });

  it('a tampered value is refused: 401 revoked, audited data_unreadable, the value in no log or audit row', async () => {
    const item = secret();
    const token = sessionCookie(await login(demo))!;
    await request(demo.server)
      .patch('/cart')
      .set(cookie(token))
      .send({ [item]: 1 })
      .expect(200);
    await request(demo.server).get('/me').set(cookie(token)).expect(200); // cached now (the demo caches)
    const id = await idOf(token);
    logs = captureNestLogs(); // after every start: createDemoApp's `logger: false` would replace it
    // Flip one character of the ciphertext, then announce the change as the store's statements do, so caches drop it.
    await demo.db.pool.query(
      `UPDATE user_sessions SET data = jsonb_build_object('cart', overlay(data->>'cart' placing
         CASE WHEN substr(data->>'cart', 40, 1) = 'A' THEN 'B' ELSE 'A' END from 40 for 1)) WHERE id = $1`,
      [id],
    );
    await demo.db.pool.query(`SELECT pg_notify('nest_pg_session', $1)`, [id]);
    let status = 0;
    await eventually(async () => {
      const response = await request(demo.server).get('/me').set(cookie(token));
      status = response.status;
      if (status === 401) expect(response.body.reason).toBe('revoked');
      return status === 401;
    }, 10_000);
    expect(status).toBe(401);
    const audit = await demo.db.pool.query(
      `SELECT details, details::text AS text FROM session_audit_log WHERE session_id = $1 AND event = 'revoked'`,
      [id],
    );
    expect(audit.rows.map((r) => r.details)).toEqual([
      { reason: 'data_unreadable', dataKey: 'cart', cause: 'failed_authentication' },
    ]);
    const warned = logs.from('SessionEncryption', 'warn').map((e) => e.message);
    expect(warned).toEqual([expect.stringContaining(`session ${id}: the value of data key "cart" is unreadable`)]);
    expect(JSON.stringify(logs.entries)).not.toContain(item);
    expect(JSON.stringify(logs.entries)).not.toContain(KEY_OLD);
  });
});
