import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { Public, SESSION_ENTITIES, SessionModule, sessionMigrations } from '../../src/session/index.js';

/** A database of its own with no session tables (createTestDatabase() migrates, which is what these tests must not do). */
async function emptyDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const server = process.env.DATABASE_URL!;
  const name = `nps_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: server });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => client.end());
    },
  };
}

@Controller()
class OpenController {
  @Public()
  @Get('open')
  open() {
    return { open: true };
  }
}

type TypeOrmOptions = Parameters<typeof TypeOrmModule.forRoot>[0];

async function boot(imports: unknown[]): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: imports as never[], controllers: [OpenController] })
    .setLogger({ log() {}, warn() {}, error() {} })
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

const typeorm = (url: string, extra: TypeOrmOptions = {}) =>
  TypeOrmModule.forRoot({
    type: 'postgres',
    url,
    autoLoadEntities: true,
    retryAttempts: 0,
    ...extra,
  } as TypeOrmOptions);

/** What every "tables missing" message must tell the user: the export, both ways to run it, and why synchronize is no way. */
const HOW_TO = [/sessionMigrations/, /migrationsRun: true/, /npx nest-pg-session migrate/, /synchronize: true/];

describe('start-up checks', () => {
  let db: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    db = await emptyDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('refuses to start without the session tables, naming sessionMigrations and how to run them', async () => {
    const failure = await boot([typeorm(db.url), SessionModule.forRoot({ purge: { enabled: false } })]).catch(
      (error: Error) => error,
    );
    expect(failure).toBeInstanceOf(Error);
    const message = (failure as Error).message;
    expect(message).toMatch(
      /^nest-pg-session: the session tables do not exist in this database \(missing: user_sessions, session_audit_log, session_purge_runs, session_purge_lease, session_audit_log_default, session_retired_tokens, session_module_keys, session_audit_log_inet_idx, session_audit_log_personal_idx\)/,
    );
    for (const hint of HOW_TO) expect(message).toMatch(hint);
  });

  it('synchronize: true ends with the same message, not a 42P01 at the first request', async () => {
    const failure = await boot([
      typeorm(db.url, { synchronize: true } as TypeOrmOptions),
      SessionModule.forRoot({ purge: { enabled: false } }),
    ]).catch((error: Error) => error);
    expect((failure as Error).message).toMatch(/the session tables do not exist/);
    expect((failure as Error).message).toMatch(/`synchronize: true` does not create them/);
  });

  it('with migrationsRun and sessionMigrations it starts; without the latest migration it refuses, naming it', async () => {
    const app = await boot([
      typeorm(db.url, { migrations: [...sessionMigrations], migrationsRun: true } as TypeOrmOptions),
      SessionModule.forRoot({ purge: { enabled: false } }),
    ]);
    await request(app.getHttpServer()).get('/open').expect(200);
    // The entities still reach `autoLoadEntities` (TypeOrmModule.forFeature is called, its module not imported).
    const dataSource = app.get<DataSource>(getDataSourceToken());
    expect(SESSION_ENTITIES.map((entity) => dataSource.hasMetadata(entity))).toEqual([true, true]);
    await app.close();

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('DROP TABLE session_purge_lease').finally(() => client.end());
    const failure = await boot([typeorm(db.url), SessionModule.forRoot({ purge: { enabled: false } })]).catch(
      (error: Error) => error,
    );
    const message = (failure as Error).message;
    expect(message).toMatch(
      /^nest-pg-session: the database lacks the session migration CreateSessionPurgeLease1796212800000 \(missing: session_purge_lease\)/,
    );
    for (const hint of HOW_TO) expect(message).toMatch(hint);
  });

  it('without TypeOrmModule.forRoot, the error names TypeOrmModule (not SessionMetrics)', async () => {
    const failure = await boot([SessionModule.forRoot({ purge: { enabled: false } })]).catch((error: Error) => error);
    const message = (failure as Error).message;
    expect(message).toMatch(
      /^nest-pg-session: SessionModule found no TypeORM DataSource\. Import TypeOrmModule\.forRoot\(/,
    );
    expect(message).toMatch(/from '@nestjs\/typeorm'/);
    expect(message).not.toMatch(/SessionMetrics/);
  });

  it('a named DataSource that is not there is named', async () => {
    const failure = await boot([
      typeorm(db.url),
      SessionModule.forRoot({ dataSource: 'sessions', purge: { enabled: false } }),
    ]).catch((error: Error) => error);
    expect((failure as Error).message).toMatch(
      /^nest-pg-session: SessionModule found no TypeORM DataSource named 'sessions'\. Import TypeOrmModule\.forRoot\(\{ name: 'sessions', type: 'postgres'/,
    );
  });
});
