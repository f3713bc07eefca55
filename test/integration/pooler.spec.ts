import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import request from 'supertest';
import { SessionInvalidationListener } from '../../src/session/cache/session-invalidation.listener.js';
import { SessionHealth } from '../../src/session/health/session-health.js';
import { PurgeStore } from '../../src/session/purge/purge.store.js';
import { SessionPurgeService } from '../../src/session/purge/session-purge.service.js';
import { resolveSessionOptions, type SessionModuleOptions } from '../../src/session/session.options.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createHostApp, type HostApp } from '../support/host-app.js';
import { CapturingLogger } from '../support/log-capture.js';
import { findPgBouncer, startPgBouncer, type PgBouncer } from '../support/pgbouncer.mjs';

/**
 * Through a real PgBouncer (Debian's 1.18: no prepared-statement tracking) in transaction
 * mode, with two server connections per database so that the app's ten pooled clients
 * share them, as under load. Skipped, with a message, where pgbouncer is not installed.
 */
const installed = findPgBouncer() !== undefined;
if (!installed) console.log('[pooler] skipped: pgbouncer is not installed (Debian: apt-get install pgbouncer)');
const describeWithPgBouncer = installed ? describe : describe.skip;

describeWithPgBouncer('behind PgBouncer in transaction mode', () => {
  let db: TestDatabase;
  let bouncer: PgBouncer;
  let host: HostApp | undefined;
  let logs: CapturingLogger;
  beforeAll(async () => {
    db = await createTestDatabase();
    bouncer = await startPgBouncer({ serverUrl: process.env.DATABASE_URL!, poolMode: 'transaction', poolSize: 2 });
  });
  afterEach(async () => {
    await host?.app.close();
    host = undefined;
    Logger.overrideLogger(true);
  });
  afterAll(async () => {
    await bouncer?.stop();
    await db?.drop();
  });

  async function start(session: SessionModuleOptions): Promise<HostApp> {
    logs = new CapturingLogger();
    host = await createHostApp({
      url: bouncer.url(db.name),
      session: { purge: { enabled: false }, ...session },
      typeorm: { extra: { max: 10 } },
      logger: logs,
    });
    return host;
  }

  /** Logs in, then sends `n` concurrent GET /me with that session; the statuses, counted. */
  async function concurrentMe(server: HostApp['server'], n: number): Promise<Record<number, number>> {
    const login = await request(server).post('/login').expect(200);
    const cookie = login.headers['set-cookie'][0].split(';')[0];
    const responses = await Promise.all(
      Array.from({ length: n }, () => request(server).get('/me').set('Cookie', cookie)),
    );
    const statuses: Record<number, number> = {};
    for (const r of responses) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    return statuses;
  }

  it('with preparedStatements on (the default), its prepared-statement errors answer 503, never 500, and the warning names the setting', async () => {
    const { server } = await start({ preparedStatements: true });
    const statuses = await concurrentMe(server, 60);
    console.log(`[pooler] transaction mode, preparedStatements on: ${JSON.stringify(statuses)}`);
    expect(Object.keys(statuses).sort()).toEqual(expect.arrayContaining(['503']));
    expect(Object.keys(statuses).filter((s) => s !== '200' && s !== '503')).toEqual([]);
    const warnings = logs.from('SessionStore', 'warn').map((e) => e.message);
    expect(warnings.length).toBeGreaterThan(0);
    for (const warning of warnings) {
      expect(warning).toMatch(/^statement (lookupByTokenHash|touchIfStale) failed: DatabaseError: (42P05|26000) /);
      expect(warning).toContain('set the SessionModule option preparedStatements: false');
    }
  });

  it('with preparedStatements: false, every request is answered 200', async () => {
    const { server } = await start({ preparedStatements: false });
    expect(await concurrentMe(server, 60)).toEqual({ 200: 60 });
    expect(logs.from('SessionStore', 'warn')).toEqual([]);
  });

  it('with the cache on, the listener hears nothing: it reports down, health is degraded, one warning names the pooler, and a revoke is seen at once', async () => {
    const { server, moduleRef } = await start({ preparedStatements: false, cache: { enabled: true, ttl: '60s' } });
    const listener = moduleRef.get(SessionInvalidationListener);
    expect(listener.connected).toBe(false); // LISTEN succeeded, its probe never came back
    expect(await moduleRef.get(SessionHealth).check()).toMatchObject({
      status: 'degraded',
      store: { status: 'up' },
      cache: { status: 'disconnected' },
    });
    const warnings = logs.from('SessionCache', 'warn').map((e) => e.message);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/hears no notices.*transaction pooler \(PgBouncer pool_mode=transaction/);

    // Bypassed: a session revoked behind the app's back is refused on the very next request.
    const login = await request(server).post('/login').expect(200);
    const cookie = login.headers['set-cookie'][0].split(';')[0];
    for (let i = 0; i < 3; i++) await request(server).get('/me').set('Cookie', cookie).expect(200);
    await db.pool.query(`UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'admin'`);
    await request(server).get('/me').set('Cookie', cookie).expect(401);
  });

  it('the purge runs through it: one of two purgers runs, the other skips, and no lock or setting stays on a server connection', async () => {
    await db.pool.query(`
      INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
      SELECT sha256(('pooler-' || g)::bytea), 'p-' || g, now() - interval '1 minute', now() + interval '1 hour'
      FROM generate_series(1, 2000) g`);
    const pools = [0, 1].map(() => new pg.Pool({ connectionString: bouncer.url(db.name), max: 3 }));
    try {
      const purgers = pools.map(
        (pool) =>
          new SessionPurgeService(
            new PurgeStore(pool),
            resolveSessionOptions({ purge: { batchSize: 250, dutyCycle: 0.5 } }),
          ),
      );
      const results = await Promise.all(purgers.map((p) => p.runOnce()));
      expect(results.filter((r) => r.skipped === undefined)).toEqual([
        expect.objectContaining({ sessionsDeleted: 2_000, batches: 8 }),
      ]);
      expect(results.filter((r) => r.skipped === 'locked')).toHaveLength(1);
      // Right away again, on either: nothing left on a server connection keeps one from running
      // (a session-level advisory lock would, and its `skipped: locked` would repeat forever).
      await db.pool.query(`
        INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
        SELECT sha256(('again-' || g)::bytea), 'a-' || g, now() - interval '1 minute', now() + interval '1 hour'
        FROM generate_series(1, 10) g`);
      expect(await purgers[1].runOnce()).toMatchObject({ sessionsDeleted: 10 });
      expect((await purgers[0].runOnce()).skipped).toBeUndefined();
      const expired = `user_sessions WHERE idle_expires_at <= now() OR absolute_expires_at <= now()`;
      expect((await db.pool.query(`SELECT count(*)::int AS n FROM ${expired}`)).rows[0].n).toBe(0);
      // Both server connections of the pooler: default limits, no advisory lock on the database.
      const clients = await Promise.all([pools[0].connect(), pools[0].connect()]);
      try {
        for (const client of clients) {
          const { rows } = await client.query(
            `SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt,
                    (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory'
                      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS advisory`,
          );
          expect(rows).toEqual([{ st: '0', lt: '0', advisory: 0 }]);
        }
      } finally {
        for (const client of clients) client.release();
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });
});
