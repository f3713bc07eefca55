import { Agent, request, type RequestOptions } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/demo/embedded-postgres.js';
import { eventually, sleep } from '../support/demo.js';
import { loginOver, spawnDemo, type DemoProcess } from '../support/demo-process.js';

describe.each(['express', 'fastify'])('faults, against the real demo process (%s)', (adapter) => {
  let db: EmbeddedDatabase;
  let demo: DemoProcess;
  beforeAll(async () => {
    db = await startEmbeddedPostgres();
    demo = await spawnDemo({ DATABASE_URL: db.url, HTTP_ADAPTER: adapter });
  }, 120_000);
  afterAll(async () => {
    await demo?.stop();
    await db?.stop();
  });

  it('Postgres stopped under load: 503 for sessions, 401 without, no crash; recovers within 5 s after restart', async () => {
    const { cookie } = await loginOver(demo.url, 'alice');
    const seen = { authenticated: new Map<number, number>(), anonymous: new Map<number, number>() };
    const count = (map: Map<number, number>, status: number) => map.set(status, (map.get(status) ?? 0) + 1);
    let stopLoad = false;
    const loop = async (withSession: boolean) => {
      while (!stopLoad) {
        const response = await fetch(`${demo.url}/me`, { headers: withSession ? { cookie } : {} });
        await response.arrayBuffer();
        count(withSession ? seen.authenticated : seen.anonymous, response.status);
      }
    };
    const load = [...Array.from({ length: 6 }, () => loop(true)), loop(false), loop(false)];

    await sleep(500);
    await db.pause();
    await sleep(1_500);
    await db.restart();
    const recoveredIn = await eventually(async () => (await fetch(`${demo.url}/me`, { headers: { cookie } })).status === 200, 5_000);
    stopLoad = true;
    await Promise.all(load);

    console.log(`[faults ${adapter}] statuses with session ${JSON.stringify([...seen.authenticated])}, without ${JSON.stringify([...seen.anonymous])}; recovered in ${recoveredIn} ms`);
    expect([...seen.authenticated.keys()].sort()).toEqual([200, 503]);
    expect([...seen.anonymous.keys()]).toEqual([401]);
    expect(demo.process.exitCode).toBeNull();
    expect(recoveredIn).toBeLessThan(5_000);
  });

  it('1,000 concurrent PATCH /me/data on one session, each its own key: all 1,000 keys are there', async () => {
    const { cookie, headers } = await loginOver(demo.url, 'bob');
    // All 1,000 are in flight at once; 200 sockets carry them (1,000 fresh sockets at once would
    // overflow the listen backlog of a busy 2-core machine and test the kernel, not the sessions).
    const agent = new Agent({ keepAlive: true, maxSockets: 200 });
    const statuses = await Promise.all(Array.from({ length: 1_000 }, (_, i) => send(`${demo.url}/me/data`, {
      method: 'PATCH', agent, headers: { ...headers, 'content-type': 'application/json' },
    }, JSON.stringify({ [`key${i}`]: i }))));
    agent.destroy();
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const data = await (await fetch(`${demo.url}/me/data`, { headers: { cookie } })).json();
    expect(Object.keys(data)).toHaveLength(1_000);
    for (let i = 0; i < 1_000; i++) expect(data[`key${i}`]).toBe(i);
  });
});

/** One request over node:http (so an Agent can bound the sockets); resolves with the status. */
function send(url: string, options: RequestOptions, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}
