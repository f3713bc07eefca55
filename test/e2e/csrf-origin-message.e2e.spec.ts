import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ADAPTERS, startDemo, type RunningDemo } from '../support/demo.js';

/** `403 origin_not_allowed` says which origin and which option, and echoes nothing else a client sent. */
describe.each(ADAPTERS)('origin_not_allowed names the origin and csrf.allowedOrigins (%s)', (adapter) => {
  let demo: RunningDemo;
  beforeAll(async () => {
    demo = await startDemo(adapter, { PURGE_CRON: 'off' });
  });
  afterAll(async () => {
    await demo?.close();
  });

  const login = (headers: Record<string, string>) =>
    request(demo.server)
      .post('/auth/login')
      .set(headers)
      .send({ username: 'alice', password: 'alice-password' })
      .expect(403)
      .expect('content-type', /^application\/json/);

  it('a Vite dev server on :5173 is told what to add, and where', async () => {
    const response = await login({ Origin: 'http://localhost:5173' });
    expect(response.body).toEqual({
      statusCode: 403,
      error: 'Forbidden',
      reason: 'origin_not_allowed',
      message: `Request origin 'http://localhost:5173' not allowed: add it to the csrf.allowedOrigins option of SessionModule (default: only the app's own origin)`,
    });
  });

  it('an Origin that is not a serialized origin, or a Referer, is not echoed', async () => {
    const generic = `Request origin not allowed: allow it with the csrf.allowedOrigins option of SessionModule (default: only the app's own origin)`;
    const cases: Record<string, string>[] = [
      { Origin: 'https://evil.test/<script>alert(1)</script>' },
      { Origin: `https://${'a'.repeat(300)}.test` },
      { Referer: 'https://evil.test/path?secret=1' },
    ];
    for (const headers of cases) {
      const response = await login(headers);
      expect([headers, response.body.reason, response.body.message]).toEqual([headers, 'origin_not_allowed', generic]);
    }
  });
});
