import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Test, type TestingModule } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import pg, { type Pool } from 'pg';
import type { DataSource } from 'typeorm';
import {
  SessionModule,
  SessionService,
  type ActiveSession,
  type SessionModuleOptions,
} from '../../src/session/index.js';
import { clockOffset, SessionCache } from '../../src/session/cache/session-cache.js';
import { generateToken, hashToken, tokenDigest } from '../../src/session/token/session-token.js';
import { INVALIDATE_ALL, INVALIDATION_CHANNEL } from '../../src/session/store/session.sql.js';
import { PurgeStore } from '../../src/session/purge/purge.store.js';
import { SessionStore } from '../../src/session/store/session.store.js';
import { SessionInvalidationListener } from '../../src/session/cache/session-invalidation.listener.js';
import { SessionValidator, type ValidationOutcome } from '../../src/session/session-validator.js';
import { internalsOf } from '../../src/session/active-session.js';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { resolveSessionOptions } from '../../src/session/session.options.js';
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
    moduleRef,
    sessions,
    validator,
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

/**
 * How long after `since` a stale answer was still possible: when the first attempt for which
 * `check` holds had started (its own duration is not staleness). Polls every 2 ms.
 */
async function msUntil(check: () => Promise<boolean>, since: number, timeoutMs = 2_000): Promise<number> {
  for (;;) {
    const startedAt = Date.now();
    if (await check()) return startedAt - since;
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
    // A never rotates by itself; B rotates every hour (brought due by moving rotated_at in SQL),
    // so B's rotations are what A must learn about. The grace window is judged by whoever reads
    // the row: A's, a minute.
    a = await startInstance(db.url, { cache, rotationInterval: 0, rotationGrace: '1m' });
    b = await startInstance(db.url, { cache, rotationInterval: '1h', rotationGrace: '1s' });
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
    const { id } = await cachedOnA(token);
    // B's rotation interval has passed (B has no copy of the row; A's cached one is not consulted).
    await db.pool.query(`UPDATE user_sessions SET rotated_at = now() - interval '1 hour' WHERE id = $1`, [id]);
    const response = new FakeResponse();
    const onB = await b.validator.validate(fakeRequest({ token }), response);
    expect(onB.ok).toBe(true);
    const fresh = response.sessionToken();
    expect(fresh).toBeDefined(); // B rotated
    // B's notice evicts A's copy
    await eventually(async () => a.cache.get(tokenDigest(token)) === undefined, 2_000, 2);
    // Inside the grace window the old token still works, now as the previous one (read from the database).
    const before = a.statements();
    expect((await a.validate(token)).ok).toBe(true);
    expect(a.statements()).toBeGreaterThan(before);
    await db.pool.query(`UPDATE user_sessions SET rotated_at = now() - interval '61 seconds' WHERE id = $1`, [id]);
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
    // Terminate every LISTEN connection on this database (A's and B's) and wait until A has noticed.
    const { rows } = await db.pool.query(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);
    await eventually(async () => !a.listener.connected, 2_000, 1);
    expect(a.cache.usable).toBe(false);
    // Before the first reconnect attempt (100 ms): a revoke whose notice reaches no one on A...
    expect(await b.sessions.revoke(id)).toBe(true);
    // ...is honoured on A's very next request, which went to the database.
    const before = a.statements();
    expect(await a.validate(token)).toMatchObject({ ok: false, reason: 'revoked' });
    expect(a.statements()).toBe(before + 1);
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
    console.log(
      `[cache] cache on: ${a.statements() - before} statements for ${requests} requests (${perRequest} per request)`,
    );
    expect(perRequest).toBeLessThanOrEqual(0.05);
  });

  it('a cache hit is decided synchronously (no promise, no statement); a miss returns a promise', async () => {
    const { token } = await a.login();
    const miss = a.validator.validate(fakeRequest({ token }), new FakeResponse());
    expect(miss).toBeInstanceOf(Promise);
    expect((await miss).ok).toBe(true);
    const before = a.statements();
    const request = fakeRequest({ token });
    const hit = a.validator.validate(request, new FakeResponse());
    expect(hit).not.toBeInstanceOf(Promise);
    expect(hit).toMatchObject({ ok: true, session: { userId: 'u-1' } });
    expect(a.statements()).toBe(before);
    // Refusals that need no SQL are synchronous too, cached or not.
    for (const instance of [a, uncached]) {
      expect(instance.validator.validate(fakeRequest(), new FakeResponse())).toEqual({ ok: false, reason: 'missing' });
      expect(instance.validator.validate(fakeRequest({ token: 'not-a-token' }), new FakeResponse())).toEqual({
        ok: false,
        reason: 'invalid',
      });
    }
  });

  it("a handler that moves its session's expiry (Date#setTime) changes nothing the cache decides on", async () => {
    const { token } = await a.login();
    const first = await a.validator.validate(fakeRequest({ token }), new FakeResponse());
    if (!first.ok) throw new Error(first.reason);
    const idle = first.session.idleExpiresAt.getTime();
    first.session.idleExpiresAt.setTime(idle + 86_400_000);
    first.session.expiresAt.setTime(idle + 86_400_000);
    first.session.absoluteExpiresAt.setTime(first.session.absoluteExpiresAt.getTime() + 86_400_000);
    const hit = a.validator.validate(fakeRequest({ token }), new FakeResponse());
    if (hit instanceof Promise || !hit.ok) throw new Error('expected a synchronous cache hit');
    expect(hit.session.idleExpiresAt.getTime()).toBe(idle);
    expect(hit.session.expiresAt.getTime()).toBe(idle);
  });

  it("a cache hit is judged at this request's time on the database clock, not at the time the row was read", async () => {
    const { token } = await a.login();
    const miss = await a.validator.validate(fakeRequest({ token }), new FakeResponse());
    if (!miss.ok) throw new Error(miss.reason);
    const readAt = internalsOf(miss.session)!.checkedAt;
    await sleep(300);
    const hit = a.validator.validate(fakeRequest({ token }), new FakeResponse());
    if (hit instanceof Promise || !hit.ok) throw new Error('expected a synchronous cache hit');
    // Step-up freshness (FreshSessionGuard) is judged on checkedAt: the read's time would make an old login look fresh.
    expect(internalsOf(hit.session)!.checkedAt - readAt).toBeGreaterThanOrEqual(290);
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

/**
 * Publishing: every statement that changes what a cached copy says sends pg_notify in the
 * same statement (delivered on commit) and evicts this instance's cache at once; the
 * per-request statements (lookup, touch) send nothing.
 */
describe('the statements that change a session announce it', () => {
  let db: TestDatabase;
  let listener: pg.Client;
  const notices: string[] = [];
  const cache = new SessionCache(true, 100, 60_000);
  let store: SessionStore;
  beforeAll(async () => {
    db = await createTestDatabase();
    listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    listener.on('notification', (message) => notices.push(message.payload ?? ''));
    await listener.query(`LISTEN ${INVALIDATION_CHANNEL}`);
    cache.resume();
    store = new SessionStore(db.pool, { changes: cache });
  });
  afterAll(async () => {
    await listener?.end();
    await db?.drop();
  });

  const HOUR = 3_600_000;
  const context = { actorId: null, ip: '10.0.0.1', userAgent: 'jest' };

  /**
   * The notices of every statement committed so far, once all have arrived (then cleared): a
   * marker sent now reaches the listener after them, as Postgres delivers notices in commit
   * order. Proves "nothing was announced" without waiting a fixed time.
   */
  let markers = 0;
  async function settledNotices(): Promise<string[]> {
    const marker = `test-marker-${++markers}`;
    await db.pool.query('SELECT pg_notify($1, $2)', [INVALIDATION_CHANNEL, marker]);
    await eventually(async () => notices.includes(marker), 5_000, 2);
    return notices.splice(0).filter((n) => !n.startsWith('test-marker-'));
  }

  /** A new session whose row is in the local cache. */
  async function cachedSession(userId = 'user-1') {
    const token = generateToken();
    const tokenHash = hashToken(token);
    await store.create({
      tokenHash,
      replacesTokenHash: null,
      userId,
      data: {},
      idleTimeoutMs: HOUR,
      absoluteTimeoutMs: 2 * HOUR,
      ip: context.ip,
      userAgent: context.userAgent,
    });
    const sentAt = Date.now();
    const row = (await store.lookupByTokenHash(tokenHash))!;
    expect(cache.set(tokenDigest(token), row, clockOffset(row.dbNow, sentAt), cache.ticket())).toBe(true);
    return { token, tokenHash, digest: tokenDigest(token), id: row.id };
  }

  /** Runs `change`; the session must leave the local cache at once and its id (or '*') must be announced. */
  async function expectAnnounced(
    session: { digest: string; id: string },
    change: () => Promise<unknown>,
    payload = session.id,
  ) {
    await settledNotices();
    await change();
    expect(cache.get(session.digest)).toBeUndefined();
    await eventually(async () => notices.includes(payload), 1_000, 5);
  }

  it('revoke, revokeAllForUser, logout, rotate, patchData, recordClientChange', async () => {
    let s = await cachedSession();
    await expectAnnounced(s, () => store.revoke(s.id, 'user', context));
    s = await cachedSession('user-all');
    const other = await cachedSession('user-all');
    await expectAnnounced(s, () => store.revokeAllForUser('user-all', 'user', context));
    expect(notices).toContain(other.id);
    expect(cache.get(other.digest)).toBeUndefined();
    s = await cachedSession();
    await expectAnnounced(s, () => store.deleteWithEvent(s.id, 'logout', context));
    s = await cachedSession();
    await expectAnnounced(s, () =>
      store.rotate({
        id: s.id,
        oldTokenHash: s.tokenHash,
        newTokenHash: hashToken(generateToken()),
        idleTimeoutMs: HOUR,
        reason: 'interval',
        reauthenticated: false,
        context,
      }),
    );
    s = await cachedSession();
    await expectAnnounced(s, () => store.patchData(s.id, { theme: 'dark' }, 65_536));
    s = await cachedSession();
    await expectAnnounced(s, () => store.recordClientChange(s.id, '10.0.0.2', 'jest'));
  });

  it('a login that revokes the token it carried (fixation)', async () => {
    const s = await cachedSession();
    await expectAnnounced(s, () =>
      store.create({
        tokenHash: hashToken(generateToken()),
        replacesTokenHash: s.tokenHash,
        userId: 'user-1',
        data: {},
        idleTimeoutMs: HOUR,
        absoluteTimeoutMs: 2 * HOUR,
        ip: null,
        userAgent: null,
      }),
    );
  });

  it('a purge batch that deleted rows flushes everything (one notice, not one per row)', async () => {
    const s = await cachedSession();
    const expired = await cachedSession();
    await db.pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
      expired.id,
    ]);
    const connection = await new PurgeStore(db.pool, cache).connect();
    try {
      expect(await connection.tryLock()).toBe(true);
      await expectAnnounced(s, () => connection.purgeExpiredSessions('idle', 100, false), INVALIDATE_ALL);
      expect(notices.filter((n) => n === INVALIDATE_ALL)).toHaveLength(1);
      notices.length = 0;
      await connection.purgeExpiredSessions('idle', 100, false); // nothing left to delete: no notice
    } finally {
      await connection.release();
    }
    expect(await settledNotices()).toEqual([]);
  });

  it('announces nothing when notify is off (no instance caches): Postgres serialises notifying commits', async () => {
    const silent = new SessionStore(db.pool, { notify: false });
    const login = (tokenHash = hashToken(generateToken())) =>
      silent.create({
        tokenHash,
        replacesTokenHash: null,
        userId: 'user-quiet',
        data: {},
        idleTimeoutMs: HOUR,
        absoluteTimeoutMs: 2 * HOUR,
        ip: null,
        userAgent: null,
      });
    const tokenHash = hashToken(generateToken());
    const created = await login(tokenHash);
    await settledNotices();
    await silent.patchData(created.id, { a: 1 }, 65_536);
    await silent.rotate({
      id: created.id,
      oldTokenHash: tokenHash,
      newTokenHash: hashToken(generateToken()),
      idleTimeoutMs: HOUR,
      reason: 'manual',
      reauthenticated: false,
      context,
    });
    expect(await silent.revoke(created.id, 'user', context)).toBe(true);
    const [second] = await Promise.all([login(), login()]);
    expect(await silent.recordClientChange(second.id, '10.0.0.9', 'quiet-agent')).toEqual({
      ipChanged: true,
      userAgentChanged: true,
    });
    expect(await silent.deleteWithEvent(second.id, 'logout', context)).toBe(true);
    expect(await silent.revokeAllForUser('user-quiet', 'user', context)).toBe(1);
    await db.pool.query(`UPDATE user_sessions SET idle_expires_at = now() - interval '1 second' WHERE id = $1`, [
      created.id,
    ]);
    const connection = await new PurgeStore(db.pool, undefined, false).connect();
    try {
      expect(await connection.tryLock()).toBe(true);
      expect((await connection.purgeExpiredSessions('idle', 100, false)).deleted).toBeGreaterThan(0);
    } finally {
      await connection.release();
    }
    expect(await settledNotices()).toEqual([]);
  });

  it('the per-request statements (lookup, touch) announce nothing and keep the cache', async () => {
    const s = await cachedSession();
    await settledNotices();
    await store.lookupByTokenHash(s.tokenHash);
    await db.pool.query(`UPDATE user_sessions SET last_seen_at = now() - interval '5 minutes' WHERE id = $1`, [s.id]);
    expect(await settledNotices()).toEqual([]);
    expect(await store.touchIfStale(s.id, HOUR, 60_000)).toBeDefined();
    expect(await settledNotices()).toEqual([]);
    expect(cache.get(s.digest)?.row.id).toBe(s.id);
  });
});

describe('SessionInvalidationListener with the database away', () => {
  it('does not stop the app: it starts bypassed, keeps retrying, and stops cleanly', async () => {
    const cache = new SessionCache(true, 100, 5_000);
    const port = await freePort(); // nothing listens there
    const listener = new SessionInvalidationListener(
      cache,
      { host: '127.0.0.1', port, user: 'postgres', connectionTimeoutMillis: 500 },
      resolveSessionOptions({ cache: { enabled: true } }),
    );
    await listener.onModuleInit();
    expect(listener.connected).toBe(false);
    expect(cache.usable).toBe(false);
    const h = tokenDigest(generateToken());
    const now = Date.now();
    expect(
      cache.set(
        h,
        {
          id: 's',
          userId: 'u',
          data: {},
          createdAt: new Date(now),
          lastSeenAt: new Date(now),
          authenticatedAt: new Date(now),
          idleExpiresAt: new Date(now + 60_000),
          absoluteExpiresAt: new Date(now + 60_000),
          rotatedAt: new Date(now),
          revokedAt: null,
          ip: null,
          userAgent: null,
          version: 1,
          lifetime: 'default',
          impersonatorId: null,
          impersonatorSessionId: null,
          secondFactorPending: false,
          isCurrentToken: true,
          dbNow: new Date(now),
        },
        0,
        cache.ticket(),
      ),
    ).toBe(false);
    await sleep(400); // a few retries (100, 200 ms)
    expect(listener.connected).toBe(false);
    await listener.onModuleDestroy();
  });
});
