import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { loginOver, spawnDemo, type DemoProcess } from '../support/demo-process.js';
import { ADAPTERS, login, startDemo, type RunningDemo } from '../support/demo.js';
import { CapturingLogger } from '../support/log-capture.js';

const REQUEST_TIMEOUT_MS = 2_000;
/** Node checks open requests once a second (create-app.ts); the rest is slack for a busy machine. */
const CLOSE_BOUND_MS = REQUEST_TIMEOUT_MS + 1_000 + 1_500;

/** Sends `head` (and any partial body), then waits without sending more until the server closes the socket. */
function stall(port: number, head: string, boundMs: number): Promise<{ ms: number; response: string }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let response = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open after ${boundMs} ms`));
    }, boundMs);
    socket.on('data', (chunk) => (response += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ ms: Date.now() - started, response });
    });
  });
}

/** Sends a Content-Length and part of the body, then hangs up. */
function abortBody(port: number, path: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"username":"al`,
        () => setImmediate(() => socket.destroy()),
      );
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

const eventually = async (check: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
};

describe.each(ADAPTERS)('slow and aborted request bodies (%s)', (adapter) => {
  let demo: RunningDemo;
  let port: number;
  const logs = new CapturingLogger();
  beforeAll(async () => {
    demo = await startDemo(adapter, { REQUEST_TIMEOUT: `${REQUEST_TIMEOUT_MS}ms` }, undefined, { logger: logs });
    await demo.app.listen(0, '127.0.0.1');
    port = (demo.app.getHttpServer().address() as AddressInfo).port;
  });
  afterAll(async () => demo?.close());

  it('closes a connection whose body stalls after the headers, within REQUEST_TIMEOUT (408)', async () => {
    const head =
      'POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user';
    const { ms, response } = await stall(port, head, CLOSE_BOUND_MS);
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    expect(ms).toBeLessThan(CLOSE_BOUND_MS);
  });

  it('closes a connection whose headers never end, within REQUEST_TIMEOUT', async () => {
    const { ms } = await stall(port, 'GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: a', CLOSE_BOUND_MS);
    expect(ms).toBeLessThan(CLOSE_BOUND_MS);
  });

  it('logs no error for bodies cut off by the client, and keeps serving', async () => {
    logs.clear();
    await Promise.all(Array.from({ length: 20 }, () => abortBody(port, '/auth/login')));
    // Express's body parser drops such requests silently; Fastify's reach the filter, once each.
    if (adapter === 'fastify')
      expect(await eventually(() => logs.from('AbortedRequest', 'debug').length >= 20, 5_000)).toBe(true);
    await request(demo.server).get('/health').expect(200);
    expect(logs.entries.filter((e) => e.level === 'error' || e.level === 'fatal')).toEqual([]);
    expect(logs.entries.filter((e) => /aborted/i.test(e.message) && e.level !== 'debug')).toEqual([]);
  });
});

/** Requests "from" a client address: the demo trusts X-Forwarded-For from loopback (TRUST_PROXY). */
const from = (ip: string) => ({ 'X-Forwarded-For': ip });
const ACCOUNT_LIMIT = 3;

describe.each(ADAPTERS)('failed password attempts per account (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { ACCOUNT_RATE_LIMIT: String(ACCOUNT_LIMIT), TRUST_PROXY: 'loopback' });
  });
  afterAll(async () => demo?.close());

  const attempt = (username: string, password: string, ip: string) =>
    request(demo.server).post('/auth/login').set(from(ip)).send({ username, password });

  it('refuses an account after N failures from N different addresses, even the right password from another (429)', async () => {
    for (let i = 0; i < ACCOUNT_LIMIT; i++) await attempt('alice', 'wrong', `198.51.100.${i + 1}`).expect(401);
    const refused = await attempt('alice', 'alice-password', '198.51.100.99').expect(429);
    expect(refused.body).toEqual({ statusCode: 429, message: 'Too many failed password attempts; try again later' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(15 * 60);
  });

  it('answers an unknown username exactly as a real one: 401 N times, then the same 429', async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i <= ACCOUNT_LIMIT; i++) {
      known.push((await attempt('bob', 'wrong', `203.0.113.${i + 1}`)).status);
      unknown.push((await attempt('nobody-here', 'wrong', `203.0.113.${i + 1}`)).status);
    }
    expect(unknown).toEqual(known);
    expect(known).toEqual([...Array(ACCOUNT_LIMIT).fill(401), 429]);
    const [a, b] = await Promise.all([
      attempt('bob', 'x', '203.0.113.50'),
      attempt('nobody-here', 'x', '203.0.113.50'),
    ]);
    expect(b.body).toEqual(a.body);
  });

  it('leaves other accounts alone, from the same addresses', async () => {
    await attempt('alice', 'wrong', '198.51.100.1'); // alice is over her limit (first test)
    await attempt('admin', 'admin-password', '198.51.100.1').expect(200);
  });

  it('counts wrong passwords at step-up and password change against the same account as login', async () => {
    const { token, csrfToken } = await login(demo.server, 'admin', from('192.0.2.1'));
    const headers = { Cookie: `__Host-sid=${token}`, 'x-csrf-token': csrfToken!, ...from('192.0.2.2') };
    await request(demo.server).post('/auth/reauthenticate').set(headers).send({ password: 'wrong' }).expect(403);
    await request(demo.server).post('/auth/reauthenticate').set(headers).send({ password: 'wrong' }).expect(403);
    await request(demo.server)
      .post('/me/password')
      .set(headers)
      .send({ currentPassword: 'wrong', newPassword: 'a-new-password' })
      .expect(403);
    await attempt('admin', 'admin-password', '192.0.2.3').expect(429);
    await request(demo.server)
      .post('/auth/reauthenticate')
      .set(headers)
      .send({ password: 'admin-password' })
      .expect(429);
  });

  it('runs at most N password checks for a burst of concurrent guesses', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 15 }, (_, i) => attempt('burst-target', `guess-${i}`, `192.0.2.${100 + i}`)),
    );
    const counts = statuses.reduce<Record<number, number>>(
      (acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }),
      {},
    );
    expect(counts).toEqual({ 401: ACCOUNT_LIMIT, 429: 15 - ACCOUNT_LIMIT });
  });
});

/**
 * @nestjs/throttler runs in the real process only (Jest's module loader cannot load it; see
 * app.module.ts), so the per-address budget is tested against the built demo.
 */
describe.each(ADAPTERS)('one password budget per address across login, step-up and password change (%s)', (adapter) => {
  const BUDGET = 6;
  let db: TestDatabase;
  let demo: DemoProcess;
  beforeAll(async () => {
    db = await createTestDatabase();
    demo = await spawnDemo({
      DATABASE_URL: db.url,
      HTTP_ADAPTER: adapter,
      LOGIN_RATE_LIMIT: String(BUDGET),
      ACCOUNT_RATE_LIMIT: '0',
      PURGE_CRON: 'off',
    });
  }, 60_000);
  afterAll(async () => {
    await demo?.stop();
    await db?.drop();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${demo.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    }).then((r) => r.status);

  it(`allows ${BUDGET} attempts in all, whichever routes they use, then refuses each route (429)`, async () => {
    const { headers } = await loginOver(demo.url, 'alice'); // 1
    const reauth = () => post('/auth/reauthenticate', { password: 'wrong' }, headers);
    const change = () => post('/me/password', { currentPassword: 'wrong', newPassword: 'another-password' }, headers);
    const badLogin = () => post('/auth/login', { username: 'alice', password: 'wrong' });
    // Two per route at most: each route alone is far under its budget.
    expect([await reauth(), await change(), await badLogin(), await reauth(), await change()]).toEqual([
      403, 403, 401, 403, 403,
    ]);
    expect(await post('/auth/login', { username: 'bob', password: 'bob-password' })).toBe(429);
    expect(await reauth()).toBe(429);
    expect(await change()).toBe(429);
  });
});
