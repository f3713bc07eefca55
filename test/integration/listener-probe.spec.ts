import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import type pg from 'pg';
import { SessionCache } from '../../src/session/cache/session-cache.js';
import {
  SESSION_LISTENER_PROBE_MS,
  SessionInvalidationListener,
} from '../../src/session/cache/session-invalidation.listener.js';
import { SessionHealth } from '../../src/session/health/session-health.js';
import { SessionModule } from '../../src/session/index.js';
import { INVALIDATION_CHANNEL } from '../../src/session/store/session.sql.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/demo.js';
import { captureNestLogs, type CapturingLogger } from '../support/log-capture.js';

const PROBE_MS = 100;

/** One instance with the cache on, its probe interval shortened (the default is 2 s). */
async function startInstance(url: string): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url, autoLoadEntities: true, retryAttempts: 0 }),
      SessionModule.forRoot({ purge: { enabled: false }, cache: { enabled: true }, globalGuard: false }),
    ],
  })
    .overrideProvider(SESSION_LISTENER_PROBE_MS)
    .useValue(PROBE_MS)
    .compile();
  await moduleRef.init();
  return moduleRef;
}

describe('the invalidation listener proves it hears (probe notices, real Postgres)', () => {
  let db: TestDatabase;
  let moduleRef: TestingModule;
  let logs: CapturingLogger;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await moduleRef?.close();
    Logger.overrideLogger(true);
  });
  afterAll(async () => db?.drop());

  it('a listener that stops hearing is caught within two probe intervals: cache bypassed, health degraded, one warning; it recovers when notices flow again', async () => {
    moduleRef = await startInstance(db.url);
    logs = captureNestLogs(); // after compile(), which installs the testing module's own logger
    const listener = moduleRef.get(SessionInvalidationListener);
    const cache = moduleRef.get(SessionCache);
    const health = moduleRef.get(SessionHealth);
    // The first probe came back before init() returned: the cache serves from the first request.
    expect(listener.connected).toBe(true);
    expect(cache.usable).toBe(true);
    expect((await health.check()).cache).toEqual({ status: 'connected' });

    // The connection stays up but stops delivering (what a transaction pooler does from the start).
    const client = (listener as unknown as { client: pg.Client }).client;
    await client.query(`UNLISTEN ${INVALIDATION_CHANNEL}`);
    const caughtMs = await eventually(async () => !listener.connected, 10_000, 5);
    console.log(`[listener probe] deaf listener caught after ${caughtMs} ms (probe every ${PROBE_MS} ms)`);
    expect(cache.usable).toBe(false);
    const report = await health.check();
    expect(report).toMatchObject({ status: 'degraded', cache: { status: 'disconnected' } });

    // Still deaf several intervals later: one warning, not one per probe.
    await eventually(async () => logs.from('SessionCache', 'warn').length > 0, 1_000);
    await new Promise((resolve) => setTimeout(resolve, PROBE_MS * 4));
    const warnings = logs.from('SessionCache', 'warn').map((e) => e.message);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/hears no notices: its probe did not come back within 100 ms; cache bypassed/);
    expect(warnings[0]).toMatch(/transaction pooler \(PgBouncer pool_mode=transaction/);
    expect(warnings[0]).toMatch(/cache\.enabled: false/);
    expect(listener.connected).toBe(false);

    // Notices flow again: the next probe comes back, the cache is used again (starting empty).
    await client.query(`LISTEN ${INVALIDATION_CHANNEL}`);
    await eventually(async () => listener.connected, 10_000, 5);
    expect(cache.usable).toBe(true);
    expect(logs.from('SessionCache', 'log').map((e) => e.message)).toContain(
      'invalidation listener hears its probe notices again; cache in use',
    );
  });

  it("ignores every probe payload (its own and other instances'): no probe evicts a cached session", async () => {
    moduleRef = await startInstance(db.url);
    const cache = moduleRef.get(SessionCache);
    const evicted: string[] = [];
    const original = cache.evictSession.bind(cache);
    cache.evictSession = (id: string) => {
      evicted.push(id);
      original(id);
    };
    const evictAll = cache.evictAll.bind(cache);
    let flushes = 0;
    cache.evictAll = () => {
      flushes++;
      evictAll();
    };
    // Another instance's probe, and several of our own intervals.
    await db.pool.query(`SELECT pg_notify($1, 'probe:0b5e6a3c-other-instance')`, [INVALIDATION_CHANNEL]);
    await new Promise((resolve) => setTimeout(resolve, PROBE_MS * 5));
    expect(evicted).toEqual([]);
    expect(flushes).toBe(0);
    expect(moduleRef.get(SessionInvalidationListener).connected).toBe(true);
  });
});
