import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { hostname } from 'node:os';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually, sleep } from '../support/demo.js';
import { loginOver, spawnDemo, type DemoProcess } from '../support/demo-process.js';

/** The purge ticks this often on every instance (cron with a seconds field). */
const PURGE_EVERY_S = 2;

/** Each instance's connections carry its name, so Postgres itself can tell who did what. */
function withApplicationName(url: string, name: string): string {
  const u = new URL(url);
  u.searchParams.set('application_name', name);
  return u.toString();
}

/**
 * Records, inside the purge's own statement, which instance (application_name) deleted how
 * many sessions of which wave (user id prefix). A statement-level trigger on the audit log:
 * the purge writes one `purged` audit row per deleted session in the same statement.
 */
async function installPurgeWitness(db: TestDatabase): Promise<void> {
  await db.pool.query(`
    CREATE TABLE test_purge_witness (app text NOT NULL, wave text NOT NULL, xact_at timestamptz NOT NULL, deleted int NOT NULL);
    CREATE FUNCTION test_witness_purge() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO test_purge_witness
      SELECT current_setting('application_name'), split_part(user_id, '-', 1), now(), count(*)
      FROM written WHERE event = 'purged' GROUP BY 2;
      RETURN NULL;
    END $$;
    CREATE TRIGGER test_witness_purge AFTER INSERT ON session_audit_log
      REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION test_witness_purge();`);
}

interface PurgeRunLine {
  sessionsDeleted: number;
  auditRowsDeleted: number;
  batches: number;
  durationMs: number;
  skipped?: string;
  tick: string;
}

/** The `purge run {...}` lines an instance logged since `from` (an offset into its output). */
function purgeRuns(instance: DemoProcess, from: number): PurgeRunLine[] {
  return [
    ...instance
      .output()
      .slice(from)
      .matchAll(/purge run (\{.*\})/g),
  ].map((m) => JSON.parse(m[1]));
}

/** Three demo processes on one PostgreSQL, as behind a round-robin load balancer; no session cache. */
describe('several app instances on one database, SESSION_CACHE=off', () => {
  let db: TestDatabase;
  let instances: DemoProcess[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    await installPurgeWitness(db);
    const adapters = ['express', 'fastify', 'express'];
    instances = await Promise.all(
      adapters.map((HTTP_ADAPTER, i) =>
        spawnDemo({
          DATABASE_URL: withApplicationName(db.url, `demo-${i}`),
          HTTP_ADAPTER,
          SESSION_CACHE: 'off',
          // Every instance schedules the purge at the same wall-clock seconds, as in production.
          PURGE_CRON: `*/${PURGE_EVERY_S} * * * * *`,
          PURGE_BATCH_SIZE: '500',
          PURGE_DUTY_CYCLE: '0.5',
          AUDIT_RETENTION: 'forever',
        }),
      ),
    );
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
    for (const instance of instances) expect((await me(instance, victim.cookie)).status).toBe(200); // every instance has seen it
    const revoked = await fetch(`${instances[1].url}/sessions/${victim.sessionId}`, {
      method: 'DELETE',
      headers: other.headers,
    });
    expect(revoked.status).toBe(204);
    // Without a cache there is nothing to invalidate: the very next request on any instance is refused.
    for (const instance of instances) {
      const response = await me(instance, victim.cookie);
      expect(response.status).toBe(401);
      expect((await response.json()).reason).toBe('revoked');
    }
  });

  it('logins are rate limited per client address by @nestjs/throttler in the real process', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 35 }, () =>
        fetch(`${instances[2].url}/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'alice', password: 'wrong' }),
        }).then((r) => r.status),
      ),
    );
    expect(attempts.filter((s) => s === 429).length).toBeGreaterThanOrEqual(5);
    expect(attempts.filter((s) => s !== 429 && s !== 401)).toEqual([]);
  });

  it('the purge runs on exactly one instance per tick: one claim row per tick, and every other instance skips that tick', async () => {
    const WAVES = 3;
    const PER_WAVE = 20_000; // 40 batches of 500 at a 50 % duty cycle: a run outlasts the spread of the instances' ticks
    const from = instances.map((i) => i.output().length);
    /** Until every instance has logged a run for a tick after `at`: any run still going then has ended. */
    const everyInstanceTickedAfter = (at: number) =>
      eventually(
        async () => instances.every((instance, i) => purgeRuns(instance, from[i]).some((r) => Date.parse(r.tick) > at)),
        60_000,
        100,
      );
    const started = Date.now();
    for (let wave = 1; wave <= WAVES; wave++) {
      // One INSERT: a tick sees all of the wave or none of it.
      await db.pool.query(
        `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
         SELECT sha256(gen_random_uuid()::text::bytea), $1 || '-' || g, now() - interval '1 minute', now() + interval '1 hour'
         FROM generate_series(1, $2) g`,
        [`w${wave}`, PER_WAVE],
      );
      await eventually(
        async () =>
          (await db.pool.query(`SELECT count(*)::int AS n FROM user_sessions WHERE user_id LIKE $1`, [`w${wave}-%`]))
            .rows[0].n === 0,
        60_000,
        100,
      );
      await everyInstanceTickedAfter(Date.now()); // the draining run ends, and every instance ticks again
    }
    const ended = Date.now();
    await everyInstanceTickedAfter(ended); // the runs of the ticks up to `ended` have ended and logged
    const elapsedMs = ended - started;

    // Postgres' witness: every wave was deleted by the connections of one instance only.
    const { rows: witness } = await db.pool.query(
      `SELECT wave, app, sum(deleted)::int AS deleted, count(*)::int AS batches,
              round(extract(epoch FROM max(xact_at) - min(xact_at)) * 1000)::int AS span_ms
       FROM test_purge_witness WHERE wave LIKE 'w%' GROUP BY wave, app ORDER BY wave, app`,
    );
    // The ticks due while the test ran (all of their log lines come after `from`).
    const inWindow = (tick: string) => Date.parse(tick) >= started && Date.parse(tick) <= ended;
    const runs = instances.map((instance, i) => purgeRuns(instance, from[i]).filter((r) => inWindow(r.tick)));
    const { rows: claims } = await db.pool.query(
      `SELECT tick, instance, finished_at, sessions_deleted, audit_rows_deleted, error FROM session_purge_runs
       WHERE tick BETWEEN $1 AND $2 ORDER BY tick`,
      [new Date(started), new Date(ended)],
    );
    const byTick = new Map<string, { instance: number; line: PurgeRunLine }[]>();
    runs.forEach((lines, i) =>
      lines.forEach((line) => byTick.set(line.tick, [...(byTick.get(line.tick) ?? []), { instance: i, line }])),
    );
    const ran = (tick: string) => byTick.get(tick)!.filter((l) => l.line.skipped === undefined);
    const perInstance = runs.map((lines, i) => ({
      instance: `demo-${i}`,
      ran: lines.filter((r) => !r.skipped).length,
      withWork: lines.filter((r) => r.sessionsDeleted > 0).length,
      skippedLocked: lines.filter((r) => r.skipped === 'locked').length,
      skippedClaimed: lines.filter((r) => r.skipped === 'claimed').length,
    }));
    const ticksRunTwice = [...byTick.keys()].filter((tick) => ran(tick).length > 1);
    console.log(
      `[multi-instance purge] ${WAVES} waves of ${PER_WAVE} in ${elapsedMs} ms; witness ${JSON.stringify(witness)}; ` +
        `runs ${JSON.stringify(perInstance)}; ${byTick.size} ticks, ${claims.length} claimed; ticks run by more than one instance: ${ticksRunTwice.length}`,
    );

    expect(witness.map((w) => w.wave)).toEqual(Array.from({ length: WAVES }, (_, i) => `w${i + 1}`)); // one row per wave: one instance each
    for (const w of witness) expect(w.deleted).toBe(PER_WAVE);
    // Each purged session has exactly one `purged` audit row.
    const {
      rows: [audit],
    } = await db.pool.query(
      `SELECT count(*)::int AS n, count(DISTINCT session_id)::int AS sessions FROM session_audit_log WHERE event = 'purged' AND user_id LIKE 'w%'`,
    );
    expect(audit).toEqual({ n: WAVES * PER_WAVE, sessions: WAVES * PER_WAVE });

    // Every tick: each instance logged it once, and at most one instance ran it. A tick that
    // nobody ran came while a draining run held the lock: every instance that ticked was
    // turned away by the lock (the runner's own cron skips a tick while its run goes on).
    expect(byTick.size).toBeGreaterThanOrEqual(Math.floor(elapsedMs / (PURGE_EVERY_S * 1_000)) - 1);
    expect(ticksRunTwice).toEqual([]);
    for (const [tick, lines] of byTick) {
      expect(new Set(lines.map((l) => l.instance)).size).toBe(lines.length);
      if (ran(tick).length === 0) expect(lines.map((l) => l.line.skipped)).toEqual(lines.map(() => 'locked'));
    }
    // session_purge_runs agrees with the logs: one finished row per tick that ran, naming the
    // process that logged the run, with its counts; no row for a tick nobody ran.
    const pids = instances.map((i) => `${hostname()}:${i.process.pid}`);
    expect(claims.map((c) => c.tick.toISOString())).toEqual(
      [...byTick.keys()].filter((tick) => ran(tick).length === 1).sort(),
    );
    for (const claim of claims) {
      const [{ instance, line }] = ran(claim.tick.toISOString());
      expect(claim).toMatchObject({
        instance: pids[instance],
        sessions_deleted: line.sessionsDeleted,
        audit_rows_deleted: line.auditRowsDeleted,
        error: null,
      });
      expect(claim.finished_at).toBeInstanceOf(Date);
    }
    // The logs agree with the witness: one run with work per wave, on one instance, and the others were turned away by the lock.
    const withWork = runs.flat().filter((r) => r.sessionsDeleted > 0);
    expect(withWork).toHaveLength(WAVES);
    expect(withWork.every((r) => r.sessionsDeleted === PER_WAVE)).toBe(true);
    expect(runs.flat().filter((r) => r.skipped === 'locked').length).toBeGreaterThanOrEqual(WAVES);
  }, 180_000);
});

/** The same three instances with the session cache on (the demo's default): revocation travels by NOTIFY. */
describe('several app instances on one database, SESSION_CACHE=on', () => {
  let db: TestDatabase;
  let instances: DemoProcess[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    const adapters = ['express', 'fastify', 'express'];
    // A long TTL, so only the invalidation notice (not the entry's expiry) can explain a prompt 401.
    instances = await Promise.all(
      adapters.map((HTTP_ADAPTER) =>
        spawnDemo({ DATABASE_URL: db.url, HTTP_ADAPTER, SESSION_CACHE: 'on', SESSION_CACHE_TTL: '60s' }),
      ),
    );
  }, 120_000);
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()));
    await db?.drop();
  });

  const meStatus = async (instance: DemoProcess, cookie: string) => {
    const response = await fetch(`${instance.url}/me`, { headers: { cookie } });
    return { status: response.status, body: await response.json() };
  };

  it('a session created on one instance works on all of them', async () => {
    const { cookie, sessionId } = await loginOver(instances[0].url, 'alice');
    for (const instance of instances) {
      for (let i = 0; i < 2; i++)
        expect(await meStatus(instance, cookie)).toMatchObject({ status: 200, body: { sessionId } });
    }
  });

  it('a revoke on one instance is honoured by every instance within 100 ms, though each had the session cached', async () => {
    const ROUNDS = 10;
    const latencies: number[][] = []; // [round][instance]: ms from the revoke's 204 to the send of that instance's first 401
    for (let round = 0; round < ROUNDS; round++) {
      const victim = await loginOver(instances[round % 3].url, 'bob');
      const other = await loginOver(instances[(round + 1) % 3].url, 'bob');
      // Fill every instance's cache with the victim's session.
      for (const instance of instances)
        for (let i = 0; i < 3; i++) expect((await meStatus(instance, victim.cookie)).status).toBe(200);

      const revoked = await fetch(`${instances[(round + 1) % 3].url}/sessions/${victim.sessionId}`, {
        method: 'DELETE',
        headers: other.headers,
      });
      expect(revoked.status).toBe(204);
      const revokedAt = performance.now();
      latencies.push(
        await Promise.all(
          instances.map(async (instance) => {
            for (;;) {
              // Timed at the send: the first request sent after the instance evicted is refused, and
              // a round trip on a loaded 2-core machine should not count against the notice.
              const sentAt = performance.now();
              const { status, body } = await meStatus(instance, victim.cookie);
              if (status === 401) {
                expect(body.reason).toBe('revoked');
                return Math.round((sentAt - revokedAt) * 10) / 10;
              }
              expect(status).toBe(200); // still served from the cache, until the notice arrives
              if (performance.now() - revokedAt > 10_000) throw new Error('revoke not honoured within 10 s');
              await sleep(2);
            }
          }),
        ),
      );
    }
    const all = latencies.flat().sort((a, b) => a - b);
    console.log(
      `[multi-instance cache on] revoke → 401 on every instance, ms over ${ROUNDS} rounds × 3 instances: ` +
        `median ${all[Math.floor(all.length / 2)]}, max ${all[all.length - 1]}; per round ${JSON.stringify(latencies)}`,
    );
    expect(all[all.length - 1]).toBeLessThan(100);
  });
});
