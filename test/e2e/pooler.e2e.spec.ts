import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually, sleep } from '../support/demo.js';
import { loginOver, spawnDemo, type DemoProcess } from '../support/demo-process.js';
import { findPgBouncer, startPgBouncer, type PgBouncer } from '../support/pgbouncer.mjs';

/**
 * Two demo processes behind one real PgBouncer in transaction pooling mode, with
 * SESSION_PREPARED_STATEMENTS=off (the one setting a transaction pooler needs), as two app
 * servers behind a load balancer would run. Skipped, with a message, without pgbouncer.
 */
const installed = findPgBouncer() !== undefined;
if (!installed) console.log('[pooler e2e] skipped: pgbouncer is not installed (Debian: apt-get install pgbouncer)');
const describeWithPgBouncer = installed ? describe : describe.skip;

const PURGE_EVERY_S = 2;

async function twoInstances(bouncer: PgBouncer, db: TestDatabase, cache: 'on' | 'off'): Promise<DemoProcess[]> {
  return Promise.all(
    ['express', 'fastify'].map((HTTP_ADAPTER) =>
      spawnDemo({
        DATABASE_URL: bouncer.url(db.name),
        HTTP_ADAPTER,
        SESSION_PREPARED_STATEMENTS: 'off',
        SESSION_CACHE: cache,
        SESSION_CACHE_TTL: '60s', // only a bypassed cache can explain a prompt 401
        PURGE_CRON: `*/${PURGE_EVERY_S} * * * * *`,
        PURGE_BATCH_SIZE: '500',
        AUDIT_RETENTION: 'forever',
      }),
    ),
  );
}

const me = (instance: DemoProcess, cookie: string) => fetch(`${instance.url}/me`, { headers: { cookie } });

/** Logs in on `a`, checks `b` serves it, revokes it on `a`: ms until `b`'s first 401 (its send time). */
async function revokePropagationMs(a: DemoProcess, b: DemoProcess, user: string): Promise<number> {
  const victim = await loginOver(a.url, user);
  const other = await loginOver(a.url, user);
  for (let i = 0; i < 3; i++) expect((await me(b, victim.cookie)).status).toBe(200);
  const revoked = await fetch(`${a.url}/sessions/${victim.sessionId}`, { method: 'DELETE', headers: other.headers });
  expect(revoked.status).toBe(204);
  const revokedAt = performance.now();
  for (;;) {
    const sentAt = performance.now();
    const response = await me(b, victim.cookie);
    if (response.status === 401) {
      expect((await response.json()).reason).toBe('revoked');
      return Math.round(sentAt - revokedAt);
    }
    expect(response.status).toBe(200);
    if (sentAt - revokedAt > 10_000) throw new Error('revoke not honoured within 10 s');
    await sleep(2);
  }
}

/** GET /me `n` times, `concurrency` at a time, alternating instances; the statuses, counted. */
async function load(instances: DemoProcess[], cookie: string, n: number, concurrency = 20) {
  const statuses: Record<number, number> = {};
  for (let sent = 0; sent < n; sent += concurrency) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(concurrency, n - sent) }, (_, i) =>
        me(instances[(sent + i) % instances.length], cookie).then((r) => r.status),
      ),
    );
    for (const status of batch) statuses[status] = (statuses[status] ?? 0) + 1;
  }
  return statuses;
}

describeWithPgBouncer('two instances behind PgBouncer (pool_mode=transaction, preparedStatements off)', () => {
  let db: TestDatabase;
  let bouncer: PgBouncer;
  beforeAll(async () => {
    db = await createTestDatabase();
    bouncer = await startPgBouncer({ serverUrl: process.env.DATABASE_URL!, poolMode: 'transaction', poolSize: 5 });
  });
  afterAll(async () => {
    await bouncer?.stop();
    await db?.drop();
  }, 120_000);

  describe('cache off', () => {
    let instances: DemoProcess[] = [];
    beforeAll(async () => {
      instances = await twoInstances(bouncer, db, 'off');
    }, 120_000);
    afterAll(async () => {
      await Promise.all(instances.map((i) => i.stop()));
    });

    it('answers every request under concurrent load, and a revoke on one is refused by the other within 1 s', async () => {
      const { cookie } = await loginOver(instances[0].url, 'alice');
      const statuses = await load(instances, cookie, 400);
      console.log(`[pooler e2e] cache off, 2 instances, 400 GET /me: ${JSON.stringify(statuses)}`);
      expect(statuses).toEqual({ 200: 400 });
      const ms = await revokePropagationMs(instances[0], instances[1], 'bob');
      console.log(`[pooler e2e] cache off: revoke refused by the other instance after ${ms} ms`);
      expect(ms).toBeLessThan(1_000);
    }, 120_000);

    it('the purge deletes every expired row: 2,000 seeded, ticks on both instances, 0 left', async () => {
      const from = instances.map((i) => i.output().length);
      await db.pool.query(`
        INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
        SELECT sha256(('expired-' || g)::bytea), 'x-' || g, now() - interval '1 minute', now() + interval '1 hour'
        FROM generate_series(1, 2000) g`);
      const expired = async () =>
        (
          await db.pool.query(
            `SELECT count(*)::int AS n FROM user_sessions WHERE idle_expires_at <= now() OR absolute_expires_at <= now()`,
          )
        ).rows[0].n as number;
      const tookMs = await eventually(async () => (await expired()) === 0, 30_000, 100);
      // Both instances ticked meanwhile (at least one more tick each, so a run still going has ended).
      const runs = () =>
        instances.map((instance, i) =>
          [
            ...instance
              .output()
              .slice(from[i])
              .matchAll(/purge run (\{.*\})/g),
          ].map((m) => JSON.parse(m[1])),
        );
      await eventually(async () => runs().every((lines) => lines.length >= 2), 20_000, 100);
      const all = runs().flat();
      console.log(
        `[pooler e2e] purge: 2,000 expired rows gone in ${tookMs} ms; runs ${JSON.stringify(
          runs().map((lines) => lines.map((l) => l.skipped ?? l.sessionsDeleted)),
        )}`,
      );
      expect(await expired()).toBe(0);
      expect(all.reduce((n, r) => n + r.sessionsDeleted, 0)).toBe(2_000);
      expect(instances.map((i) => i.output())).not.toContainEqual(expect.stringMatching(/purge run failed/));
      // Not stuck after one run: later ticks still run (a lease, not a lock left on a server connection).
      expect(all.filter((r) => r.skipped === undefined).length).toBeGreaterThanOrEqual(2);
    }, 120_000);
  });

  describe('cache on', () => {
    let instances: DemoProcess[] = [];
    beforeAll(async () => {
      instances = await twoInstances(bouncer, db, 'on');
    }, 120_000);
    afterAll(async () => {
      await Promise.all(instances.map((i) => i.stop()));
    });

    it('each listener reports down (health degraded, a warning naming the pooler), the cache is bypassed, and a revoke is refused within 1 s', async () => {
      for (const instance of instances) {
        const response = await fetch(`${instance.url}/health`);
        expect(response.status).toBe(200); // degraded, not down: sessions work, from the database
        expect((await response.json()).details.session).toMatchObject({
          status: 'degraded',
          store: { status: 'up' },
          cache: { status: 'disconnected' },
        });
        const warnings = instance.output().match(/invalidation listener hears no notices[^\n]*/g) ?? [];
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/transaction pooler \(PgBouncer pool_mode=transaction/);
      }
      const { cookie } = await loginOver(instances[0].url, 'alice');
      const statuses = await load(instances, cookie, 400);
      console.log(`[pooler e2e] cache on, 2 instances, 400 GET /me: ${JSON.stringify(statuses)}`);
      expect(statuses).toEqual({ 200: 400 });
      const ms = await revokePropagationMs(instances[1], instances[0], 'bob');
      console.log(`[pooler e2e] cache on (bypassed): revoke refused by the other instance after ${ms} ms`);
      expect(ms).toBeLessThan(1_000);
    }, 120_000);
  });
});
