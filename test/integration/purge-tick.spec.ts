import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { SessionModule, SessionPurgeService, type PurgeResult } from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/demo.js';
import { CapturingLogger } from '../support/log-capture.js';

/** A cron that never fires during the test: ticks are handed to the service by hand. */
const NEVER = '0 0 1 1 *';

interface Instance {
  purge: SessionPurgeService;
  /** What each scheduled tick of this instance returned, in order (undefined: the run failed). */
  ticks: (PurgeResult | undefined)[];
  /** The tick path the cron job calls, for the tick due at `due`. */
  tick(due: Date): Promise<PurgeResult | undefined>;
  /**
   * Turns away the ticks that fire from now on and waits for those in flight, so that close()
   * interrupts none (a run stopped by shutdown records 'interrupted by shutdown').
   */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * One Nest app with the session module on the test database: one app instance of a fleet.
 * `lateMs` delays each of its ticks after the cron fired, as a busy process or a slow network would.
 */
async function startInstance(url: string, cron: string, lateMs = 0): Promise<Instance> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url, autoLoadEntities: true, retryAttempts: 0 }),
      SessionModule.forRoot({ purge: { cron, dutyCycle: 1, batchSize: 100 } }),
    ],
  })
    .setLogger(new CapturingLogger())
    .compile();
  const purge = moduleRef.get(SessionPurgeService);
  // The seam: the cron job's onTick calls this.tick(due); record what each call returned.
  const ticks: (PurgeResult | undefined)[] = [];
  const tick = purge['tick'].bind(purge);
  const inFlight = new Set<Promise<PurgeResult | undefined>>();
  let settling = false;
  purge['tick'] = (due: Date) => {
    if (settling) return Promise.resolve(undefined);
    const run = (async () => {
      if (lateMs) await delay(lateMs);
      const result = await tick(due);
      ticks.push(result);
      return result;
    })();
    inFlight.add(run);
    void run.finally(() => inFlight.delete(run));
    return run;
  };
  await moduleRef.init(); // starts the cron job
  return {
    purge,
    ticks,
    tick: (due) => purge['tick'](due),
    async settle() {
      settling = true;
      await Promise.all(inFlight);
    },
    close: () => moduleRef.close(),
  };
}

async function seedExpired(pool: pg.Pool, count: number, prefix: string): Promise<void> {
  await pool.query(
    `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
     SELECT sha256(gen_random_uuid()::text::bytea), $2 || '-' || g, now() - interval '1 minute', now() + interval '1 hour'
     FROM generate_series(1, $1) g`,
    [count, prefix],
  );
}

async function purgeRuns(pool: pg.Pool) {
  const { rows } = await pool.query(
    `SELECT tick, instance, started_at, finished_at, sessions_deleted, audit_rows_deleted, error FROM session_purge_runs ORDER BY tick`,
  );
  return rows as {
    tick: Date;
    instance: string;
    started_at: Date;
    finished_at: Date | null;
    sessions_deleted: number | null;
    audit_rows_deleted: number | null;
    error: string | null;
  }[];
}

const THIS_PROCESS = `${hostname()}:${process.pid}`;
const second = (offset = 0) => new Date(Math.floor(Date.now() / 1_000) * 1_000 + offset * 1_000);

describe('each scheduled purge tick runs on exactly one instance (two Nest apps on one database)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());
  beforeEach(async () => {
    await db.pool.query('TRUNCATE user_sessions, session_retired_tokens, session_audit_log, session_purge_runs');
  });

  it('the instance whose tick fires after the winner finished skips it as claimed instead of running it again', async () => {
    const [a, b] = [await startInstance(db.url, NEVER), await startInstance(db.url, NEVER)];
    try {
      await seedExpired(db.pool, 300, 'first');
      const due = second(-60);
      // A's timer fires first and its run ends; B's timer for the same tick fires after that.
      // The advisory lock alone cannot tell them apart: it is free again when B asks.
      const ranOnA = await a.tick(due);
      const onB = await b.tick(due);
      expect(ranOnA).toMatchObject({ sessionsDeleted: 300, batches: 3, tick: due.toISOString() });
      expect(ranOnA!.skipped).toBeUndefined();
      expect(onB).toMatchObject({ skipped: 'claimed', sessionsDeleted: 0, batches: 0, tick: due.toISOString() });

      // Both timers fire together for the next tick: one runs, the other is turned away
      // (by the lock while the winner runs, by the claim after).
      await seedExpired(db.pool, 200, 'second');
      const next = second(-59);
      const together = await Promise.all([a.tick(next), b.tick(next)]);
      expect(together.filter((r) => r!.skipped === undefined)).toEqual([
        expect.objectContaining({ sessionsDeleted: 200, tick: next.toISOString() }),
      ]);
      expect(together.filter((r) => r!.skipped !== undefined)).toEqual([
        expect.objectContaining({ skipped: expect.stringMatching(/^(claimed|locked)$/), sessionsDeleted: 0 }),
      ]);

      // Any instance can win a later tick; a tick is never claimed in advance.
      const third = second(-58);
      expect(await b.tick(third)).toMatchObject({ sessionsDeleted: 0, tick: third.toISOString() });
      expect((await b.tick(third))!.skipped).toBe('claimed');

      // runOnce() by hand (and `npm run purge`) claims no tick: it runs, and writes no row.
      await seedExpired(db.pool, 5, 'manual');
      const manual = await a.purge.runOnce();
      expect(manual).toMatchObject({ sessionsDeleted: 5 });
      expect(manual).not.toHaveProperty('tick');

      // One row per tick, by the instance that ran it, finished, with what it deleted.
      const rows = await purgeRuns(db.pool);
      expect(rows.map((r) => r.tick.toISOString())).toEqual([due, next, third].map((d) => d.toISOString()));
      expect(rows.map((r) => r.sessions_deleted)).toEqual([300, 200, 0]);
      for (const row of rows) {
        expect(row).toMatchObject({ instance: THIS_PROCESS, audit_rows_deleted: 0, error: null });
        expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
      }
      expect(
        await db.pool.query(`SELECT count(*)::int AS n FROM session_audit_log WHERE event = 'purged'`),
      ).toMatchObject({ rows: [{ n: 505 }] });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('with real crons firing every second on both apps, every tick was run by one of them and skipped by the other', async () => {
    const EVERY_SECOND = '* * * * * *';
    // B reaches the database 300 ms after its cron fired, when A's run (a few ms) is long over:
    // the lock is free again, and only the claim stops B from running the tick a second time.
    const [a, b] = await Promise.all([startInstance(db.url, EVERY_SECOND), startInstance(db.url, EVERY_SECOND, 300)]);
    const byTickOf = () => {
      const byTick = new Map<string, { a?: PurgeResult; b?: PurgeResult }>();
      for (const [side, ticks] of [['a', a.ticks] as const, ['b', b.ticks] as const]) {
        for (const r of ticks) {
          if (!r) continue; // a failed run: checked below
          expect(byTick.get(r.tick!)?.[side]).toBeUndefined(); // each app's cron fires once per tick
          byTick.set(r.tick!, { ...byTick.get(r.tick!), [side]: r });
        }
      }
      return byTick;
    };
    const seenByBoth = (byTick: ReturnType<typeof byTickOf>) => [...byTick.entries()].filter(([, t]) => t.a && t.b);
    // Enough ticks seen by both apps, B turned away by the claim in at least three: on a busy
    // machine a tick may come late or be skipped, so rounds go on until then (bounded).
    const enough = () => {
      const both = seenByBoth(byTickOf());
      return both.length >= 4 && both.filter(([, t]) => t.b?.skipped === 'claimed').length >= 3;
    };
    let seeded = 0;
    try {
      for (let round = 0; round < 20 && !enough(); round++) {
        await seedExpired(db.pool, 150, `s${round}`);
        seeded += 150;
        // the next tick that runs purges them
        await eventually(
          async () => (await db.pool.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n === 0,
          10_000,
        );
      }
      // Only completed ticks are judged: no run is cut short by close().
      await Promise.all([a.settle(), b.settle()]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    for (const r of [...a.ticks, ...b.ticks]) expect(r).toBeDefined(); // no run failed
    const byTick = byTickOf();
    const rows = await purgeRuns(db.pool);
    const ranBy = (t: { a?: PurgeResult; b?: PurgeResult }) => [t.a, t.b].filter((r) => r && r.skipped === undefined);
    const both = seenByBoth(byTick);
    console.log(
      `[purge ticks] ${byTick.size} ticks, ${both.length} seen by both apps: ` +
        `${both.map(([tick, t]) => `${tick.slice(17, 19)}s ${t.a!.skipped ?? 'ran'}/${t.b!.skipped ?? 'ran'}`).join(', ')}`,
    );

    expect(both.length).toBeGreaterThanOrEqual(4);
    for (const [, t] of byTick) {
      expect(ranBy(t).length).toBeLessThanOrEqual(1); // never twice
      // Never not at all, unless every instance that saw it found the lock held (a run of this
      // instance or the other still going: on a busy machine a run can outlast a second).
      if (ranBy(t).length === 0)
        expect([t.a, t.b].filter(Boolean).map((r) => r!.skipped)).toEqual(
          [t.a, t.b].filter(Boolean).map(() => 'locked'),
        );
    }
    for (const [, t] of both)
      if (ranBy(t).length === 1)
        expect([t.a!.skipped, t.b!.skipped].filter((s) => s === 'claimed' || s === 'locked')).toHaveLength(1);
    expect(both.filter(([, t]) => t.b!.skipped === 'claimed').length).toBeGreaterThanOrEqual(3);
    // The table agrees: one finished row per tick run, with the counts of the one run.
    const run = [...byTick.entries()].filter(([, t]) => ranBy(t).length === 1).map(([tick]) => tick);
    expect(rows.map((r) => r.tick.toISOString())).toEqual(run.sort());
    for (const row of rows) {
      const run = ranBy(byTick.get(row.tick.toISOString())!)[0]!;
      expect(row).toMatchObject({
        sessions_deleted: run.sessionsDeleted,
        audit_rows_deleted: run.auditRowsDeleted,
        error: null,
      });
      expect(row.finished_at).not.toBeNull();
    }
    expect(rows.reduce((n, r) => n + r.sessions_deleted!, 0)).toBe(seeded);
  }, 60_000);

  it('a claimed tick whose run failed keeps the error in its row, and is not run again by another instance', async () => {
    const [a, b] = [await startInstance(db.url, NEVER), await startInstance(db.url, NEVER)];
    const migration = await db.pool.connect();
    try {
      await seedExpired(db.pool, 10, 'blocked');
      const due = second(-30);
      await migration.query('BEGIN');
      await migration.query('LOCK TABLE session_audit_log IN ACCESS EXCLUSIVE MODE');
      expect(await a.tick(due)).toBeUndefined(); // the lock timeout ended the run; tick() logged a warning
      await migration.query('ROLLBACK');

      expect(await purgeRuns(db.pool)).toEqual([
        expect.objectContaining({
          instance: THIS_PROCESS,
          sessions_deleted: 0,
          finished_at: expect.any(Date),
          error: expect.stringMatching(/lock timeout/),
        }),
      ]);
      expect(await b.tick(due)).toMatchObject({ skipped: 'claimed' });
      expect(await b.tick(second(-29))).toMatchObject({ sessionsDeleted: 10 });

      // A claimer that died mid-run leaves its row unfinished: that tick is not run again either.
      const orphan = second(-28);
      await db.pool.query(
        `INSERT INTO session_purge_runs (tick, instance, started_at) VALUES ($1, 'crashed:1', now() - interval '1 hour')`,
        [orphan],
      );
      expect(await a.tick(orphan)).toMatchObject({ skipped: 'claimed' });
      expect((await purgeRuns(db.pool)).at(-1)).toMatchObject({ instance: 'crashed:1', finished_at: null });
    } finally {
      migration.release();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("deletes the rows of ticks older than a week in the purge's own run", async () => {
    await db.pool.query(`INSERT INTO session_purge_runs (tick, instance) VALUES
      (now() - interval '8 days', 'old'), (now() - interval '7 days 1 minute', 'old'), (now() - interval '6 days', 'kept')`);
    const a = await startInstance(db.url, NEVER);
    try {
      await a.purge.runOnce();
      expect((await purgeRuns(db.pool)).map((r) => r.instance)).toEqual(['kept']);
    } finally {
      await a.close();
    }
  });
});

describe('an upgrade that skipped the purge-runs migration', () => {
  it('fails each tick with an error that names the migration to run', async () => {
    const db = await createTestDatabase();
    const logs = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url: db.url, autoLoadEntities: true, retryAttempts: 0 }),
        SessionModule.forRoot({ purge: { cron: NEVER, dutyCycle: 1 } }),
      ],
    })
      .setLogger(logs)
      .compile();
    await moduleRef.init();
    // Dropped once the app runs: at start-up a missing table stops the app (test/integration/session-startup.spec.ts).
    await db.pool.query('DROP TABLE session_purge_runs');
    try {
      const purge = moduleRef.get(SessionPurgeService);
      expect(await purge['tick'](second())).toBeUndefined();
      const errors = logs.entries.filter((e) => e.level === 'error').map((e) => e.message);
      expect(errors.join('\n')).toMatch(/run the migrations .*CreateSessionPurgeRuns1796169600000/);
    } finally {
      await moduleRef.close();
      await db.drop();
    }
  });
});
