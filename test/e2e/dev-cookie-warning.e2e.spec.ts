import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADAPTERS, startDemo, type RunningDemo } from '../support/demo.js';
import { captureNestLogs, type CapturingLogger } from '../support/log-capture.js';

/**
 * A login over plain http to a host that is not localhost sets a Secure cookie the browser
 * drops: the app says why, once. Protocol and host are the framework's (trust proxy decides
 * whether X-Forwarded-* count), on Express and on Fastify.
 */
describe.each(ADAPTERS)('the dropped Secure cookie warning (%s)', (adapter) => {
  let db: TestDatabase;
  let logs: CapturingLogger;
  const demos: RunningDemo[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const demo of demos) await demo.app.close();
    await db?.drop();
  });

  async function start(env: Record<string, string> = {}): Promise<RunningDemo> {
    const demo = await startDemo(adapter, { PURGE_CRON: 'off', SESSION_CACHE: 'off', ...env }, { url: db.url });
    demos.push(demo);
    logs = captureNestLogs(); // after start: createDemoApp's `logger: false` would replace it
    return demo;
  }
  const loginAs = (demo: RunningDemo, headers: Record<string, string>) =>
    request(demo.server)
      .post('/auth/login')
      .set(headers)
      .send({ username: 'alice', password: 'alice-password' })
      .expect(200);
  const warnings = () => logs.from('SessionService', 'warn').map((entry) => entry.message);

  it('warns once for plain http to a host that is not localhost, never for localhost', async () => {
    const demo = await start();
    for (const host of ['localhost:3000', '127.0.0.1:3000', '[::1]:3000', 'app.localhost', 'LOCALHOST'])
      await loginAs(demo, { Host: host });
    expect(warnings()).toEqual([]);

    // Without trust proxy, X-Forwarded-Proto is the client's word, not the app's protocol.
    await loginAs(demo, { Host: 'myapp.test:3000', 'X-Forwarded-Proto': 'https' });
    await loginAs(demo, { Host: '192.168.1.20:3000' });
    expect(warnings()).toEqual([
      `A login over plain http to "myapp.test" set the Secure cookie '__Host-sid': browsers drop Secure cookies sent over http (except to localhost), so every later request answers 401 missing. In development, set SessionModule.forRoot({ cookie: { secure: false, name: 'sid' } }) (a '__Host-' name requires Secure); otherwise serve the app over https (behind a TLS-terminating proxy, enable the framework's trust proxy so it sees https). Logged once.`,
    ]);
  });

  it('behind a trusted proxy, https from X-Forwarded-Proto needs no warning; http does', async () => {
    const demo = await start({ TRUST_PROXY: 'loopback' });
    await loginAs(demo, { Host: 'myapp.test', 'X-Forwarded-Proto': 'https' });
    expect(warnings()).toEqual([]);
    await loginAs(demo, { Host: 'myapp.test', 'X-Forwarded-Proto': 'http' });
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatch(/^A login over plain http to "myapp.test" set the Secure cookie '__Host-sid'/);
  });
});
