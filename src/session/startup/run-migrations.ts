import pg from 'pg';
import { DataSource } from 'typeorm';
import { sessionMigrations } from '../../../migrations/index.js';

/** App-wide advisory lock key ('nps1') that concurrent migration runs serialise on. */
const MIGRATION_LOCK = 0x6e70_7331;

/**
 * Runs `sessionMigrations` against `url` and returns the names of those it ran. TypeORM takes
 * no lock of its own, so instances starting together serialise on a Postgres advisory lock
 * instead of racing to create tables. The lock is transaction-scoped, held by a transaction
 * left open on a connection of its own for the run: a transaction pooler keeps that transaction
 * on one server connection, and nothing outlives it (a session-level lock would stay held by
 * the pooler's server connection after this client left). Connection errors are thrown as pg
 * reports them.
 */
export async function runSessionMigrations(url: string, migrationsTable = 'migrations'): Promise<string[]> {
  // A client, not a pool: a pool may close an idle connection, and with it the lock.
  const lock = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  lock.on('error', () => undefined);
  await lock.connect();
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    migrations: sessionMigrations,
    migrationsTableName: migrationsTable,
    logging: false,
  });
  try {
    await lock.query('BEGIN');
    await lock.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await dataSource.initialize();
    const ran = await dataSource.runMigrations({ transaction: 'all' });
    return ran.map((migration) => migration.name);
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await lock.query('COMMIT').catch(() => undefined); // releases the lock
    await lock.end().catch(() => undefined);
  }
}
