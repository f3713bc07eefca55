import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { loginOver, spawnDemo, type DemoProcess } from '../support/demo-process.js';

/** Three demo processes on one PostgreSQL, as behind a round-robin load balancer. */
describe('several app instances on one database', () => {
  let db: TestDatabase;
  let instances: DemoProcess[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    const adapters = ['express', 'fastify', 'express'];
    instances = await Promise.all(adapters.map((HTTP_ADAPTER) => spawnDemo({ DATABASE_URL: db.url, HTTP_ADAPTER, SESSION_CACHE: 'off' })));
  }, 120_000);
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

  it('a revoke on one instance is honoured by all, immediately', async () => {
    const victim = await loginOver(instances[0].url, 'bob');
    const other = await loginOver(instances[1].url, 'bob');
    const revoked = await fetch(`${instances[1].url}/sessions/${victim.sessionId}`, { method: 'DELETE', headers: other.headers });
    expect(revoked.status).toBe(204);
    for (const instance of instances) {
      const response = await me(instance, victim.cookie);
      expect(response.status).toBe(401);
      expect((await response.json()).reason).toBe('revoked');
    }
  });

  it('logins are rate limited per client address by @nestjs/throttler in the real process', async () => {
    const attempts = await Promise.all(Array.from({ length: 35 }, () => fetch(`${instances[2].url}/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: 'wrong' }),
    }).then((r) => r.status)));
    expect(attempts.filter((s) => s === 429).length).toBeGreaterThanOrEqual(5);
    expect(attempts.filter((s) => s !== 429 && s !== 401)).toEqual([]);
  });
});
