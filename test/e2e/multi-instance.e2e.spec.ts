import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { loginOver, spawnDemo, type DemoProcess } from '../support/demo-process.js';

/**
 * Three demo processes on one PostgreSQL, as behind a round-robin load balancer, each with
 * its session cache on (the demo's default): they stay coherent through LISTEN/NOTIFY.
 */
describe('several app instances on one database', () => {
  let db: TestDatabase;
  let instances: DemoProcess[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    const adapters = ['express', 'fastify', 'express'];
    instances = await Promise.all(adapters.map((HTTP_ADAPTER) => spawnDemo({ DATABASE_URL: db.url, HTTP_ADAPTER, SESSION_CACHE: 'on', SESSION_CACHE_TTL: '60s' })));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()));
    await db?.drop();
  });

  const me = (instance: DemoProcess, cookie: string) => fetch(`${instance.url}/me`, { headers: { cookie } });

  it('a session created on one instance works on all of them', async () => {
    const { cookie, sessionId } = await loginOver(instances[0].url, 'alice');
    for (const instance of instances) {
      const response = await me(instance, cookie);
      expect(response.status).toBe(200);
      expect((await response.json()).sessionId).toBe(sessionId);
    }
  });

  it('a revoke on one instance is honoured by all within 100 ms, though each had the session cached', async () => {
    const victim = await loginOver(instances[0].url, 'bob');
    const other = await loginOver(instances[1].url, 'bob');
    // Every instance validates (and caches, TTL 60 s) the victim's session first.
    for (const instance of instances) expect((await me(instance, victim.cookie)).status).toBe(200);
    const revoked = await fetch(`${instances[1].url}/sessions/${victim.sessionId}`, { method: 'DELETE', headers: other.headers });
    expect(revoked.status).toBe(204);
    const since = Date.now();
    const refusedAfter = await Promise.all(instances.map(async (instance) => {
      for (;;) {
        const response = await me(instance, victim.cookie);
        if (response.status === 401) {
          expect((await response.json()).reason).toBe('revoked');
          return Date.now() - since;
        }
        if (Date.now() - since > 2_000) throw new Error('revoked session still accepted after 2 s');
      }
    }));
    console.log(`[multi-instance] revoke refused on each instance after ${refusedAfter.join(', ')} ms`);
    for (const ms of refusedAfter) expect(ms).toBeLessThan(100);
  });

  it('logins are rate limited per client address by @nestjs/throttler in the real process', async () => {
    const attempts = await Promise.all(Array.from({ length: 35 }, () => fetch(`${instances[2].url}/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'wrong' }),
    }).then((r) => r.status)));
    expect(attempts.filter((s) => s === 429).length).toBeGreaterThanOrEqual(5);
    expect(attempts.filter((s) => s !== 429 && s !== 401)).toEqual([]);
  });
});
