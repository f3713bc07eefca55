import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplicationContext } from '@nestjs/common';
import { ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import pg from 'pg';
import { runMigrations } from '../../src/demo/migrate.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/demo/embedded-postgres.js';
import { SessionModule, SessionPurgeService, StoreUnavailableError } from '../../src/session/index.js';
import { SESSION_PURGE_JOB } from '../../src/session/purge/session-purge.service.js';
import { eventually } from '../support/demo.js';
import { CapturingLogger } from '../support/log-capture.js';

/** A PostgreSQL of its own, so stopping it cannot disturb other test files. */
describe('purge while the database is down', () => {
  let db: EmbeddedDatabase;
  let app: INestApplicationContext;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    db = await startEmbeddedPostgres();
    await runMigrations(db.url);
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url,
          autoLoadEntities: true,
          retryAttempts: 0,
          extra: { connectionTimeoutMillis: 1_000 },
        }),
        ScheduleModule.forRoot(),
        // A schedule that never comes round by itself: the test fires the ticks.
        SessionModule.forRoot({ purge: { cron: '0 0 1 1 *', batchSize: 50, dutyCycle: 0.001 } }),
      ],
    })
      .setLogger(logger)
      .compile();
    app = await moduleRef.init();
  });
  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  async function seedExpired(n: number): Promise<void> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(
      `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
      SELECT sha256(gen_random_uuid()::text::bytea), 'u' || g, now() - interval '1 minute', now() + interval '1 hour'
      FROM generate_series(1, $1) g`,
      [n],
    );
    await client.end();
  }

  const tick = () => app.get(SchedulerRegistry).getCronJob(SESSION_PURGE_JOB).fireOnTick();
  const purgeLogs = (level: 'log' | 'warn' | 'error') => logger.from('SessionPurgeService', level);

  it('a tick while Postgres is down logs one warning and does not crash; the next tick after it returns purges', async () => {
    await seedExpired(20);
    await db.pause();
    logger.clear();

    await tick();

    expect(purgeLogs('warn')).toHaveLength(1);
    expect(purgeLogs('warn')[0].message).toMatch(
      /^purge run failed, the next tick tries again: session store unavailable/,
    );
    expect(purgeLogs('error')).toEqual([]);
    expect(purgeLogs('log')).toEqual([]);

    await db.restart();
    logger.clear();
    await eventually(
      async () => {
        await tick();
        return purgeLogs('log').length > 0;
      },
      10_000,
      200,
    );
    expect(purgeLogs('log').at(-1)!.message).toContain('"sessionsDeleted":20');
  });

  it('Postgres going away between two batches fails that run cleanly (no uncaught error), and a later run finishes the job', async () => {
    await seedExpired(60); // a full batch of 50, a long pause, then 10
    // A Client, not a Pool: Pool.end() resolves before its sockets are closed, and a socket
    // still closing when the server stops would report an error nobody listens to.
    const probe = new pg.Client({ connectionString: db.url });
    await probe.connect();
    const purgedSoFar = async () =>
      (await probe.query(`SELECT count(*)::int AS n FROM session_audit_log WHERE event = 'purged'`)).rows[0].n;
    const before = await purgedSoFar();
    const purge = app.get(SessionPurgeService);
    const run = purge.runOnce();
    // Batch 1 is done once its audit rows are there; the run then pauses (999 times as long as
    // the batch took) holding its connection.
    await eventually(async () => (await purgedSoFar()) >= before + 50, 5_000, 20);
    await probe.end();
    await db.pause(); // the idle, checked-out purge connection is told FATAL: terminating connection

    await expect(run).rejects.toBeInstanceOf(StoreUnavailableError);

    await db.restart();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const left = (await client.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n;
      const purged = (await client.query(`SELECT count(*)::int AS n FROM session_audit_log WHERE event = 'purged'`))
        .rows[0].n;
      expect(left).toBe(10); // batch 2 never ran
      expect(left + purged).toBe(80); // 20 from the first test, 60 here: each session either still there or audited
      await eventually(
        async () => (await purge.runOnce().catch(() => undefined))?.sessionsDeleted === left,
        30_000,
        200,
      );
      expect((await client.query('SELECT count(*)::int AS n FROM user_sessions')).rows[0].n).toBe(0);
      expect(
        (
          await client.query(
            `SELECT count(DISTINCT session_id)::int AS n FROM session_audit_log WHERE event = 'purged'`,
          )
        ).rows[0].n,
      ).toBe(80);
    } finally {
      await client.end();
    }
  });
});
