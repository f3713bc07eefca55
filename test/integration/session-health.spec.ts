import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { getDataSourceToken } from '@nestjs/typeorm';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { SessionHealthIndicator } from '../../src/session/health/index.js';
import { Public, SessionHealth, SessionPurgeService } from '../../src/session/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/demo.js';
import { createHostApp } from '../support/host-app.js';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly session: SessionHealthIndicator,
  ) {}

  @Public()
  @Get()
  check() {
    return this.health.check([() => this.session.isHealthy('session', { timeoutMs: 300 })]);
  }
}

async function startApp(db: TestDatabase, poolMax = 10, cache = false): Promise<INestApplication> {
  const { app } = await createHostApp({
    url: db.url,
    typeorm: { extra: { max: poolMax, connectionTimeoutMillis: 1_000 } },
    session: { purge: { enabled: false, dutyCycle: 1 }, cache: { enabled: cache } },
    login: false,
    imports: [TerminusModule.forRoot({ logger: false })],
    controllers: [HealthController],
    providers: [SessionHealthIndicator],
  });
  return app;
}

async function seedExpired(db: TestDatabase, n: number): Promise<void> {
  await db.pool.query(
    `INSERT INTO user_sessions (token_hash, user_id, idle_expires_at, absolute_expires_at)
     SELECT sha256(gen_random_uuid()::text::bytea), 'u-' || g, now() - interval '1 minute', now() + interval '1 hour'
     FROM generate_series(1, $1) g`,
    [n],
  );
}

describe('SessionHealthIndicator with Terminus, against a real PostgreSQL', () => {
  let db: TestDatabase;
  let app: INestApplication;
  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startApp(db, 2);
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('is up with details of the store, a purge that has not run yet, and no cache', async () => {
    const response = await request(app.getHttpServer()).get('/health').expect(200);
    expect(response.body.status).toBe('ok');
    const session = response.body.details.session;
    expect(session).toMatchObject({
      status: 'up',
      store: { status: 'up' },
      purge: { status: 'never_run', scheduled: false },
      cache: { status: 'disabled' },
    });
    expect(session.store.responseTimeMs).toBeGreaterThanOrEqual(0);
    expect(session.store.responseTimeMs).toBeLessThan(300);
  });

  it('reports the last purge run: when, how long ago, and the rows it deleted', async () => {
    await seedExpired(db, 7);
    const result = await app.get(SessionPurgeService).runOnce();
    expect(result.sessionsDeleted).toBe(7);

    const fresh = (await request(app.getHttpServer()).get('/health').expect(200)).body.details.session.purge;
    expect(fresh).toMatchObject({ status: 'ok', sessionsDeleted: 7, auditRowsDeleted: 0, ageSeconds: 0 });
    expect(Date.now() - Date.parse(fresh.lastRunAt)).toBeLessThan(5_000);

    // 1.6 s later by the app's clock (the age is the app's time since the run ended)
    const clock = jest.spyOn(Date, 'now').mockReturnValue(Date.parse(fresh.lastRunAt) + 1_600);
    const later = await request(app.getHttpServer())
      .get('/health')
      .expect(200)
      .then((r) => r.body.details.session.purge)
      .finally(() => clock.mockRestore());
    expect(later.ageSeconds).toBe(2);
    expect(later.lastRunAt).toBe(fresh.lastRunAt);
  });

  it('is degraded (still 200) when the last purge run failed, and up again after one succeeds', async () => {
    // A table lock held elsewhere (a migration, say) makes the purge hit its 2 s lock timeout.
    const blocker = await db.pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE user_sessions IN ACCESS EXCLUSIVE MODE');
      await expect(app.get(SessionPurgeService).runOnce()).rejects.toThrow();
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    const response = await request(app.getHttpServer()).get('/health').expect(200);
    expect(response.body.status).toBe('degraded');
    expect(response.body.details.session).toMatchObject({
      status: 'degraded',
      store: { status: 'up' },
      purge: { status: 'failed' },
    });
    expect(response.body.details.session.purge.error).toMatch(/lock timeout/);

    await app.get(SessionPurgeService).runOnce();
    expect((await request(app.getHttpServer()).get('/health').expect(200)).body.details.session.purge.status).toBe(
      'ok',
    );
  }, 20_000);

  it('reports the cache listener when a cache is enabled: disconnected is degraded, connected is up', async () => {
    const cached = await startApp(db, 4, true);
    try {
      await eventually(
        async () =>
          (await request(cached.getHttpServer()).get('/health')).body.details?.session?.cache?.status === 'connected',
        5_000,
      );
      // Cut the real LISTEN connection: until it is back, the cache is bypassed and health says so.
      await db.pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`,
      );
      await eventually(
        async () => {
          const { body } = await request(cached.getHttpServer()).get('/health').expect(200);
          return body.details.session.status === 'degraded' && body.details.session.cache.status === 'disconnected';
        },
        5_000,
        5,
      );
      // It reconnects by itself (backoff), and health is up again.
      await eventually(async () => {
        const { body } = await request(cached.getHttpServer()).get('/health');
        return (
          body.status === 'ok' &&
          body.details.session.status === 'up' &&
          body.details.session.cache.status === 'connected'
        );
      }, 10_000);
    } finally {
      await cached.close();
    }
  }, 20_000);

  it('is down (503) within its short timeout when the store does not answer in time', async () => {
    // Both pool connections busy for 3 s: SELECT 1 cannot even get a connection.
    const dataSource = app.get<DataSource>(getDataSourceToken());
    const busy = [dataSource.query('SELECT pg_sleep(3)'), dataSource.query('SELECT pg_sleep(3)')];
    await eventually(async () => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query = 'SELECT pg_sleep(3)'`,
      );
      return rows[0].n === 2;
    }, 5_000);
    const started = Date.now();
    const response = await request(app.getHttpServer()).get('/health').expect(503);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(response.body).toMatchObject({
      status: 'error',
      error: { session: { status: 'down', store: { status: 'down' } } },
    });
    expect(response.body.error.session.store.error).toBe('timeout'); // a category: /health is usually public
    await Promise.all(busy);
    await request(app.getHttpServer()).get('/health').expect(200);
  }, 20_000);
});

describe('SessionHealthIndicator when the database is gone', () => {
  it('answers 503 with the store down and its cause (connections terminated, database dropped)', async () => {
    const db = await createTestDatabase();
    const app = await startApp(db);
    try {
      await request(app.getHttpServer()).get('/health').expect(200);
      await db.drop(); // DROP DATABASE ... WITH (FORCE): pg_terminate_backend on every connection, then no database to reconnect to
      const response = await request(app.getHttpServer()).get('/health').expect(503);
      expect(response.body).toMatchObject({
        status: 'error',
        error: { session: { status: 'down', store: { status: 'down' } } },
      });
      // A category only: the database's own text names hosts, users and databases.
      expect(['connection_terminated', 'database_missing', 'connection_failed']).toContain(
        response.body.error.session.store.error,
      );
      expect(JSON.stringify(response.body)).not.toContain(new URL(db.url).pathname.slice(1));
      // The text itself is in the log, and in the report when asked for.
      const detailed = await app.get(SessionHealth).check({ errorDetail: true });
      expect(detailed.store.error).toMatch(/terminat|does not exist|Connection|ECONN/i);
    } finally {
      await app.close();
    }
  });
});
