import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { sessionMigrations } from '../../migrations/index.js';
import { runMigrations } from '../../src/demo/migrate.js';

export interface TestDatabase {
  url: string;
  name: string;
  /** A pool for the test's own assertions (not the app's). */
  pool: pg.Pool;
  /** Another pool on this database (a test's own size or timeouts), ended by drop() if the test has not. */
  newPool(options?: Omit<pg.PoolConfig, 'connectionString'>): pg.Pool;
  drop(): Promise<void>;
}

/** A fresh, migrated database on the test server, so test files never see each other's rows. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) throw new Error('DATABASE_URL is not set (global setup should have set it)');
  const name = `nps_test_${randomBytes(6).toString('hex')}`;
  const direct = new URL(serverUrl);
  direct.pathname = `/${name}`;
  const template = process.env.NPS_TEST_TEMPLATE; // set by global-setup.ts
  if (template) await migratedTemplate(serverUrl, template);
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  // Migrations always go direct: their advisory lock is session state (see docs/scaling.md).
  if (!template) await runMigrations(direct.toString());
  const url = throughPooler(direct);
  const pools: pg.Pool[] = [];
  const newPool = (options: Omit<pg.PoolConfig, 'connectionString'> = {}) => {
    const pool = new pg.Pool({ ...options, connectionString: url.toString() });
    // pool.end() resolves before its sockets have closed, so DROP ... WITH (FORCE) in drop() can
    // still terminate one: that error lands on an idle client, and must not crash the test run.
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  };
  const pool = newPool({ max: 4 });
  return {
    url: url.toString(),
    name,
    pool,
    newPool,
    async drop() {
      for (const p of pools) if (!p.ending) await p.end();
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

let templateReady: Promise<void> | undefined;

/**
 * A migrated database every test database of this Jest run is copied from (CREATE DATABASE ...
 * TEMPLATE copies files, so a test file skips running every migration again: ~0.5-1 s of
 * PostgreSQL work each). The first file to need it builds it; the others wait on an advisory
 * lock on the server's own database, then find it. global-teardown.ts drops it.
 */
function migratedTemplate(serverUrl: string, template: string): Promise<void> {
  templateReady ??= (async () => {
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      await admin.query('SELECT pg_advisory_lock(hashtext($1))', [template]);
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
      if (rowCount) return;
      await admin.query(`CREATE DATABASE ${template}`);
      const url = new URL(serverUrl);
      url.pathname = `/${template}`;
      try {
        await runMigrations(url.toString());
      } catch (error) {
        await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`); // the next file tries again
        throw error;
      }
    } finally {
      await admin.end(); // and with it the lock
    }
  })();
  return templateReady;
}

/**
 * The pooler pass (test/support/pooler-pass.mjs) sets NPS_TEST_POOLER_URL to a PgBouncer in
 * front of DATABASE_URL's server: then each test database is reached through it, by the app
 * under test and by the test's own pool alike. Otherwise `url` itself.
 */
function throughPooler(url: URL): URL {
  const pooler = process.env.NPS_TEST_POOLER_URL;
  if (!pooler) return url;
  const through = new URL(url);
  through.host = new URL(pooler).host;
  return through;
}

/**
 * Counts real row writes to user_sessions with a trigger, so "at most one UPDATE" is
 * measured by Postgres itself, whatever client or pool issued it.
 */
export async function installWriteCounter(
  pool: pg.Pool,
): Promise<{ updates(): Promise<number>; reset(): Promise<void> }> {
  await pool.query(`
    CREATE TABLE IF NOT EXISTS test_write_counter (op text PRIMARY KEY, n integer NOT NULL);
    CREATE OR REPLACE FUNCTION test_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO test_write_counter VALUES (TG_OP, 1) ON CONFLICT (op) DO UPDATE SET n = test_write_counter.n + 1;
      RETURN NULL;
    END $$;
    DROP TRIGGER IF EXISTS test_count_write ON user_sessions;
    CREATE TRIGGER test_count_write AFTER INSERT OR UPDATE OR DELETE ON user_sessions
      FOR EACH ROW EXECUTE FUNCTION test_count_write();`);
  return {
    async updates() {
      const { rows } = await pool.query(
        `SELECT coalesce((SELECT n FROM test_write_counter WHERE op = 'UPDATE'), 0) AS n`,
      );
      return rows[0].n;
    },
    async reset() {
      await pool.query('TRUNCATE test_write_counter');
    },
  };
}

/** Undoes every migration from `migration` on (the later ones first), as a DataSource of all of them would. */
export async function undoMigrationsFrom(
  dataSource: DataSource,
  migration: (typeof sessionMigrations)[number],
): Promise<void> {
  const index = sessionMigrations.indexOf(migration);
  if (index < 0) throw new Error(`${migration.name} is not one of sessionMigrations`);
  for (let i = sessionMigrations.length - 1; i >= index; i--)
    await dataSource.undoLastMigration({ transaction: 'all' });
}
