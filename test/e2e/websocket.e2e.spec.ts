import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import request from 'supertest';
import WebSocket from 'ws';
import { SOCKET_CLOSE_CODES } from '../../src/session/index.js';
import { ADAPTERS, bareCookie, cookie, login, sessionCookie, startDemo, type RunningDemo } from '../support/demo.js';
import { closedWithin, openWs, refusal } from '../support/sockets.js';

/** The demo's contract: `/ws` needs a session, answers `whoami`, and closes with 4401 when the session ends. */
describe.each(ADAPTERS)('demo WebSocket /ws (%s)', (adapter) => {
  let demo: RunningDemo;
  let url: string;
  beforeAll(async () => {
    demo = await startDemo(adapter);
    await demo.app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(demo.server.address() as { port: number }).port}/ws`;
  });
  afterAll(async () => {
    await demo?.close();
  });

  const whoami = (socket: WebSocket) =>
    new Promise<string>((resolve) => {
      socket.once('message', (raw: Buffer) => resolve(String(raw)));
      socket.send('whoami');
    });

  it('refuses a socket without a session or with a forged token (4401)', async () => {
    expect(await refusal(url)).toMatchObject({ code: SOCKET_CLOSE_CODES.sessionEnded, reason: 'missing' });
    expect(await refusal(url, bareCookie('x'.repeat(43)))).toMatchObject({ code: 4401, reason: 'invalid' });
  });

  it('answers whoami with the user id, and closes within 1 s of POST /auth/logout', async () => {
    const alice = await login(demo.server, 'alice');
    const { socket, closed } = await openWs(url, bareCookie(alice.token));
    expect(await whoami(socket)).toBe(alice.userId);
    const loggedOutAt = performance.now();
    await request(demo.server).post('/auth/logout').set(cookie(alice.token)).expect(204);
    const result = await closedWithin(closed, loggedOutAt, 1_000);
    console.log(`[${adapter}] demo /ws closed ${result.ms} ms after logout`);
    expect(result).toMatchObject({ code: 4401, reason: 'logout' });
  });

  it('closes within 1 s of an admin revoke of that session', async () => {
    const bob = await login(demo.server, 'bob');
    const admin = await login(demo.server, 'admin');
    const { socket, closed } = await openWs(url, bareCookie(bob.token));
    expect(await whoami(socket)).toBe(bob.userId);
    const revokedAt = performance.now();
    await request(demo.server).delete(`/admin/sessions/${bob.sessionId}`).set(cookie(admin.token)).expect(204);
    const result = await closedWithin(closed, revokedAt, 1_000);
    console.log(`[${adapter}] demo /ws closed ${result.ms} ms after an admin revoke`);
    expect(result).toMatchObject({ code: 4401, reason: 'revoked' });
  });

  it("closes an impersonation's socket when the admin's own session has ended underneath", async () => {
    const admin = await login(demo.server, 'admin');
    const started = await request(demo.server)
      .post('/admin/users/u-alice/impersonate')
      .set(cookie(admin.token))
      .send({ reason: 'ticket #1' })
      .expect(200);
    const { socket, closed } = await openWs(url, bareCookie(sessionCookie(started)!));
    expect(await whoami(socket)).toBe('u-alice');
    // The admin's session idled out (the clock moved in SQL); a notice makes the registry re-read.
    await demo.db.pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
      admin.sessionId,
    ]);
    const endedAt = performance.now();
    await demo.db.pool.query(`SELECT pg_notify('nest_pg_session', $1)`, [started.body.sessionId]);
    expect(await closedWithin(closed, endedAt, 1_000)).toMatchObject({ code: 4401, reason: 'idle_timeout' });
  });
});
