import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/demo/embedded-postgres.js';
import { ADAPTERS, cookie, eventually, login, startDemo, type RunningDemo } from '../support/demo.js';

/** A PostgreSQL of its own, so stopping it cannot disturb other test files. */
describe.each(ADAPTERS)('database outage (%s)', (adapter) => {
  let db: EmbeddedDatabase;
  let demo: RunningDemo;
  beforeAll(async () => {
    db = await startEmbeddedPostgres();
    demo = await startDemo(adapter, {}, { url: db.url });
  });
  afterAll(async () => {
    await demo?.close();
    await db?.stop();
  });

  it('answers 503 (never 200, never 500) while Postgres is down, and recovers by itself', async () => {
    const { token } = await login(demo.server);
    await request(demo.server).get('/me').set(cookie(token)).expect(200);

    await db.pause();
    for (let i = 0; i < 5; i++) {
      const response = await request(demo.server).get('/me').set(cookie(token));
      expect(response.status).toBe(503);
      expect(response.body).toMatchObject({ statusCode: 503, message: 'Session store unavailable' });
      expect(JSON.stringify(response.body)).not.toMatch(/at .*\.js|ECONNREFUSED/);
    }
    await request(demo.server).get('/health').expect(503);
    // Requests that need no database still work.
    const anonymous = await request(demo.server).get('/me');
    expect(anonymous.status).toBe(401);

    await db.restart();
    const recoveredIn = await eventually(
      async () => (await request(demo.server).get('/me').set(cookie(token))).status === 200,
      5_000,
    );
    expect(recoveredIn).toBeLessThan(5_000);
    await request(demo.server).get('/health').expect(200);
  });
});
