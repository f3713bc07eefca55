import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Test, type TestingModule } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import {
  SessionCache, SessionInvalidationListener, SessionModule, SessionService, SessionValidator, type ActiveSession, type SessionModuleOptions,
  type ValidationOutcome,
} from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually, sleep } from '../support/demo.js';
import { fakeRequest, FakeResponse } from '../support/fake-http.js';

/**
 * One app instance: its own DataSource (pool), SessionModule, cache and listener, all on
 * the shared test database, as two processes behind a load balancer would be. Every
 * statement the session layer sends on the instance's pool is counted.
 */
interface Instance {
  moduleRef: TestingModule;
  sessions: SessionService;
  validator: SessionValidator;
  cache: SessionCache;
  listener: SessionInvalidationListener;
  statements(): number;
  validate(token?: string): Promise<ValidationOutcome & { request: object }>;
  login(userId?: string): Promise<{ token: string; id: string }>;
}

async function startInstance(url: string, options: SessionModuleOptions): Promise<Instance> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url, autoLoadEntities: true, retryAttempts: 0 }),
      SessionModule.forRoot({ purge: { enabled: false }, ...options, globalGuard: false }),
    ],
  }).compile();
  await moduleRef.init(); // onModuleInit: the listener connects and LISTENs
  const pool = (moduleRef.get<DataSource>(getDataSourceToken()).driver as unknown as { master: Pool }).master;
  let statements = 0;
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    statements += 1;
    return query(...args);
  };
  const sessions = moduleRef.get(SessionService);
  const validator = moduleRef.get(SessionValidator);
  return {
    moduleRef, sessions, validator,
    cache: moduleRef.get(SessionCache),
    listener: moduleRef.get(SessionInvalidationListener),
    statements: () => statements,
    async validate(token) {
      const request = fakeRequest({ token });
      return { ...(await validator.validate(request, new FakeResponse())), request };
    },
    async login(userId = 'u-1') {
      const response = new FakeResponse();
      const created = await sessions.create(fakeRequest(), response, { userId });
      return { token: response.sessionToken()!, id: created.sessionId };
    },
  };
}

/** How long after `since` instance A first refuses (or stops returning) what `accepted` accepts. */
async function msUntil(check: () => Promise<boolean>, since: number, timeoutMs = 2_000): Promise<number> {
  for (;;) {
    if (await check()) return Date.now() - since;
    if (Date.now() - since > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await sleep(2);
  }
}

describe('session cache across two instances (LISTEN/NOTIFY)', () => {
  let db: TestDatabase;
  let a: Instance;
  let b: Instance;
  let uncached: Instance;
  // A TTL far longer than any assertion: only a NOTIFY can evict in time.
  const cache = { enabled: true, ttl: '60s' };
  beforeAll(async () => {
    db = await createTestDatabase();
    // A never rotates by itself; B rotates every 2 s, so B's rotations are what A must learn about.
    a = await startInstance(db.url, { cache, rotationInterval: 0, rotationGrace: '1s' });
    b = await startInstance(db.url, { cache, rotationInterval: '2s', rotationGrace: '1s' });
    uncached = await startInstance(db.url, { rotationInterval: 0 });
  });
  afterAll(async () => {
    for (const instance of [a, b, uncached]) await instance?.moduleRef.close();
    await db?.drop();
  });

  /** Validates on A until it is served from A's cache (no statement). */
  async function cachedOnA(token: string): Promise<ActiveSession> {
    const first = await a.validate(token);
    expect(first.ok).toBe(true);
    const before = a.statements();
    const second = await a.validate(token);
    expect(second.ok).toBe(true);
    expect(a.statements()).toBe(before); // served from the cache
    return (second as { session: ActiveSession }).session;
  }

  const refusedOnA = (token: string, reason: string) => async () => {
    const outcome = await a.validate(token);
    return !outcome.ok && outcome.reason === reason;
  };

  it('both listeners are connected', () => {
    expect(a.listener.connected).toBe(true);
    expect(b.listener.connected).toBe(true);
    expect(uncached.listener.connected).toBe(false); // cache off: no LISTEN connection at all
  });

  it('a session cached on A and revoked on B is refused by A within 100 ms', async () => {
    const { token, id } = await a.login();
    await cachedOnA(token);
    expect(await b.sessions.revoke(id)).toBe(true);
    const ms = await msUntil(refusedOnA(token, 'revoked'), Date.now());
    console.log(`[cache] revoke on B refused on A after ${ms} ms`);
    expect(ms).toBeLessThan(100);
  });

  it('revokeAll on B reaches A within 100 ms', async () => {
    const first = await a.login('u-all');
    const second = await a.login('u-all');
    await cachedOnA(first.token);
    await cachedOnA(second.token);
    expect(await b.sessions.revokeAll('u-all')).toBe(2);
    const started = Date.now();
    await msUntil(refusedOnA(first.token, 'revoked'), started);
    const ms = await msUntil(refusedOnA(second.token, 'revoked'), started);
    console.log(`[cache] revokeAll on B refused on A after ${ms} ms`);
    expect(ms).toBeLessThan(100);
  });

  it('a logout on B is honoured by A within 100 ms', async () => {
    const { token } = await a.login();
    await cachedOnA(token);
    const onB = await b.validate(token);
    expect(onB.ok).toBe(true);
    await b.sessions.destroy(onB.request as never, new FakeResponse());
    const ms = await msUntil(refusedOnA(token, 'invalid'), Date.now());
    console.log(`[cache] logout on B refused on A after ${ms} ms`);
    expect(ms).toBeLessThan(100);
  });

  it('a manual rotation on B drops the old token on A within 100 ms', async () => {
    const { token } = await a.login();
    await cachedOnA(token);
    const onB = await b.validate(token);
    const response = new FakeResponse();
    await b.sessions.rotate(onB.request as never, response);
    const ms = await msUntil(refusedOnA(token, 'invalid'), Date.now());
    console.log(`[cache] manual rotation on B: old token refused on A after ${ms} ms`);
    expect(ms).toBeLessThan(100);
    expect((await a.validate(response.sessionToken())).ok).toBe(true);
  });

  it('after a periodic rotation on B, A serves the old token only for the grace window', async () => {
    const { token } = await a.login();
    await cachedOnA(token);
    await sleep(2_050); // B's rotation interval
    const response = new FakeResponse();
    const onB = await b.validator.validate(fakeRequest({ token }), response);
    expect(onB.ok).toBe(true);
    const fresh = response.sessionToken();
    expect(fresh).toBeDefined(); // B rotated
    await sleep(20);
    const ms = Date.now();
    // Inside the grace window the old token still works, now as the previous one (read from the database).
    const before = a.statements();
    expect((await a.validate(token)).ok).toBe(true);
    expect(a.statements()).toBeGreaterThan(before);
    await sleep(Math.max(0, 1_100 - (Date.now() - ms)));
    // After it, presenting the old token is reuse: refused, and the session revoked.
    const late = await a.validate(token);
    expect(late).toMatchObject({ ok: false, reason: 'revoked' });
    expect((await a.validate(fresh)).ok).toBe(false);
  });

  it('data patched on B is seen on A within 100 ms', async () => {
    const { token } = await a.login();
    await cachedOnA(token);
    const onB = await b.validate(token);
    await b.sessions.patch((onB as { session: ActiveSession }).session, { theme: 'dark' });
    const ms = await msUntil(async () => {
      const outcome = await a.validate(token);
      return outcome.ok && outcome.session.data.theme === 'dark';
    }, Date.now());
    console.log(`[cache] patch on B seen on A after ${ms} ms`);
    expect(ms).toBeLessThan(100);
  });

  it('a change made on A itself is seen by A at once (no wait for its own notice)', async () => {
    const { token, id } = await a.login();
    const session = await cachedOnA(token);
    await a.sessions.patch(session, { step: 2 });
    const outcome = await a.validate(token);
    expect(outcome.ok && outcome.session.data.step).toBe(2);
    await a.sessions.revoke(id);
    expect(await a.validate(token)).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('with the listener connection killed, A bypasses its cache: a revoke on B is honoured on the very next request; the listener reconnects', async () => {
    const { token, id } = await a.login();
    await cachedOnA(token);
    // Terminate every LISTEN connection on this database (A's and B's), waiting until they are gone.
    const { rows } = await db.pool.query(
      `SELECT pg_terminate_backend(pid, 5000) AS killed FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`);
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(await b.sessions.revoke(id)).toBe(true); // its notice reaches no one on A
    expect(await a.validate(token)).toMatchObject({ ok: false, reason: 'revoked' });
    const reconnectMs = await eventually(async () => a.listener.connected && b.listener.connected, 10_000, 20);
    console.log(`[cache] listeners reconnected within ${reconnectMs} ms`);
    // And the cache works again after reconnecting.
    const again = await a.login();
    await cachedOnA(again.token);
  });

  it('with the cache, a hot session costs at most 0.05 statements per request', async () => {
    const { token } = await a.login();
    const requests = 200;
    const before = a.statements();
    for (let i = 0; i < requests; i++) expect((await a.validate(token)).ok).toBe(true);
    const perRequest = (a.statements() - before) / requests;
    console.log(`[cache] cache on: ${a.statements() - before} statements for ${requests} requests (${perRequest} per request)`);
    expect(perRequest).toBeLessThanOrEqual(0.05);
  });

  it('without the cache, exactly one statement per request at steady state', async () => {
    const { token } = await uncached.login();
    expect((await uncached.validate(token)).ok).toBe(true);
    const requests = 50;
    const before = uncached.statements();
    for (let i = 0; i < requests; i++) expect((await uncached.validate(token)).ok).toBe(true);
    console.log(`[cache] cache off: ${uncached.statements() - before} statements for ${requests} requests`);
    expect(uncached.statements() - before).toBe(requests);
  });

  it('no cookie or a malformed token costs no statement, cached or not', async () => {
    for (const instance of [a, uncached]) {
      const before = instance.statements();
      expect(await instance.validate()).toMatchObject({ ok: false, reason: 'missing' });
      expect(await instance.validate('not-a-token')).toMatchObject({ ok: false, reason: 'invalid' });
      expect(instance.statements()).toBe(before);
    }
  });
});
