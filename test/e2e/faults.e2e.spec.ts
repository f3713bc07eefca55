import { Agent, request, type RequestOptions } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/demo/embedded-postgres.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/demo.js';
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

    const served = (map: Map<number, number>, status: number, n: number) => async () => (map.get(status) ?? 0) >= n;
    await eventually(served(seen.authenticated, 200, 20), 10_000); // the load runs
    await db.pause();
    await eventually(served(seen.authenticated, 503, 20), 10_000); // and meets the outage
    await db.restart();
    const recoveredIn = await eventually(
      async () => (await fetch(`${demo.url}/me`, { headers: { cookie } })).status === 200,
      5_000,
    );
    stopLoad = true;
    await Promise.all(load);

    console.log(
      `[faults ${adapter}] statuses with session ${JSON.stringify([...seen.authenticated])}, without ${JSON.stringify([...seen.anonymous])}; recovered in ${recoveredIn} ms`,
    );
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
    const statuses = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) =>
        send(
          `${demo.url}/me/data`,
          {
            method: 'PATCH',
            agent,
            headers: { ...headers, 'content-type': 'application/json' },
          },
          JSON.stringify({ [`key${i}`]: i }),
        ),
      ),
    );
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

const PURGE_CLI = new URL('../../dist/src/session/cli/main.js', import.meta.url).pathname;

/** `npm run purge` (the built `nest-pg-session purge`) in its own process; resolves with its exit code or signal. */
function startPurgeProcess(databaseUrl: string, env: Record<string, string>) {
  if (!existsSync(PURGE_CLI)) throw new Error(`${PURGE_CLI} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(process.execPath, [PURGE_CLI, 'purge'], {
    env: { ...process.env, NODE_OPTIONS: '', DATABASE_URL: databaseUrl, AUDIT_RETENTION: 'forever', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, output: () => output };
}

describe('a purge process killed mid-run (SIGKILL)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  const count = async (sql: string) =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM ${sql}`)).rows[0].n as number;

  it('the next purge completes: no expired row left, no row half-deleted, one purged audit row per deleted session, live rows untouched', async () => {
    const IDLE_EXPIRED = 190_000;
    const ABSOLUTE_EXPIRED = 10_000;
    const LIVE = 2_000;
    const BATCH = 1_000;
    const seed = (prefix: string, n: number, idle: string, absolute: string) =>
      db.pool.query(
        `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
       SELECT sha256(gen_random_uuid()::text::bytea), $1 || '-' || g, now() + $3::interval, now() + $4::interval
       FROM generate_series(1, $2) g`,
        [prefix, n, idle, absolute],
      );
    await seed('idle', IDLE_EXPIRED, '-1 minute', '1 hour');
    await seed('absolute', ABSOLUTE_EXPIRED, '1 hour', '-1 minute');
    await seed('live', LIVE, '1 hour', '2 hours');
    await db.pool.query(`CREATE TABLE test_seeded AS SELECT id, user_id FROM user_sessions`);
    await db.pool.query('VACUUM ANALYZE user_sessions');

    // A 50 % duty cycle: the run takes long enough to be caught in the middle.
    const url = new URL(db.url);
    url.searchParams.set('application_name', 'purge-to-kill');
    const first = startPurgeProcess(url.toString(), { PURGE_BATCH_SIZE: String(BATCH), PURGE_DUTY_CYCLE: '0.5' });
    await eventually(async () => (await count(`session_audit_log WHERE event = 'purged'`)) >= 3 * BATCH, 60_000, 20);
    // Kill it while a batch statement is executing on the server, not in a pause between two.
    await eventually(
      async () =>
        (await count(`pg_stat_activity WHERE application_name = 'purge-to-kill' AND state = 'active'
      AND query LIKE '%DELETE FROM user_sessions%'`)) === 1,
      10_000,
      1,
    );
    expect(first.child.exitCode).toBeNull(); // still purging
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(first.output()).not.toMatch(/purge run/); // it never got to report

    // Postgres ends the dead process's connection; an in-flight batch either committed whole (its
    // audit rows with it) or not at all. Its purge lease stays until it expires (PURGE_LEASE_MS):
    // nothing on a pooled connection can tell that it died. The test moves that clock in SQL.
    await eventually(
      async () => (await count(`pg_stat_activity WHERE application_name = 'purge-to-kill'`)) === 0,
      10_000,
    );
    expect(await count(`session_purge_lease WHERE expires_at > now()`)).toBe(1);
    const startPurge = () => startPurgeProcess(db.url, { PURGE_BATCH_SIZE: String(BATCH), PURGE_DUTY_CYCLE: '1' });
    const turnedAway = startPurge();
    expect(await turnedAway.exited).toEqual({ code: 0, signal: null });
    expect(turnedAway.output()).toMatch(/purge run \{.*"skipped":"locked"/);
    await db.pool.query(`UPDATE session_purge_lease SET expires_at = now() - interval '1 second'`);
    const deletedBeforeKill = await count(
      `test_seeded s WHERE NOT EXISTS (SELECT 1 FROM user_sessions u WHERE u.id = s.id)`,
    );
    const auditedBeforeKill = await count(`session_audit_log WHERE event = 'purged'`);
    expect(deletedBeforeKill % BATCH).toBe(0); // whole batches only
    expect(auditedBeforeKill).toBe(deletedBeforeKill);
    expect(await count(`session_audit_log a JOIN user_sessions u ON u.id = a.session_id`)).toBe(0); // no audit row for a row still there
    expect(deletedBeforeKill).toBeLessThan(IDLE_EXPIRED + ABSOLUTE_EXPIRED); // it really was killed mid-run

    const secondStarted = Date.now();
    const second = startPurge();
    const exit = await second.exited;
    const secondMs = Date.now() - secondStarted;
    expect(exit).toEqual({ code: 0, signal: null });
    const report = JSON.parse(second.output().match(/purge run (\{.*\})/)![1]);
    console.log(
      `[purge SIGKILL] killed after ${deletedBeforeKill} of ${IDLE_EXPIRED + ABSOLUTE_EXPIRED} expired rows; ` +
        `next run ${JSON.stringify(report)} (process ${secondMs} ms)`,
    );
    expect(report).toMatchObject({ sessionsDeleted: IDLE_EXPIRED + ABSOLUTE_EXPIRED - deletedBeforeKill });
    expect(report.skipped).toBeUndefined();

    expect(await count(`user_sessions WHERE idle_expires_at <= now() OR absolute_expires_at <= now()`)).toBe(0);
    // Every live row is still there, untouched; every expired one is gone.
    expect(await count(`user_sessions`)).toBe(LIVE);
    expect(await count(`test_seeded s JOIN user_sessions u ON u.id = s.id WHERE s.user_id LIKE 'live-%'`)).toBe(LIVE);
    // Exactly one purged audit row per deleted session, none for anything else.
    const {
      rows: [audit],
    } = await db.pool.query(
      `SELECT count(*)::int AS n, count(DISTINCT session_id)::int AS sessions,
              count(*) FILTER (WHERE details->>'expiry' = 'idle')::int AS idle,
              count(*) FILTER (WHERE details->>'expiry' = 'absolute')::int AS absolute
       FROM session_audit_log WHERE event = 'purged'`,
    );
    expect(audit).toEqual({
      n: IDLE_EXPIRED + ABSOLUTE_EXPIRED,
      sessions: IDLE_EXPIRED + ABSOLUTE_EXPIRED,
      idle: IDLE_EXPIRED,
      absolute: ABSOLUTE_EXPIRED,
    });
    expect(
      await count(`test_seeded s WHERE s.user_id NOT LIKE 'live-%'
      AND NOT EXISTS (SELECT 1 FROM session_audit_log a WHERE a.event = 'purged' AND a.session_id = s.id AND a.user_id = s.user_id)`),
    ).toBe(0);
  }, 300_000);
});
