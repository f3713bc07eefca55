import pg from 'pg';
import { DataSource } from 'typeorm';
import { sessionMigrations } from '../../migrations/index.js';

const MIGRATION_LOCK = 0x6e70_7331; // arbitrary app-wide advisory lock key ('nps1')

/**
 * Runs the session migrations. TypeORM takes no lock of its own, so instances starting
 * together serialise on a Postgres advisory lock instead of racing to create tables.
 */
export async function runMigrations(databaseUrl: string): Promise<void> {
  const lock = new pg.Client({ connectionString: databaseUrl });
  await lock.connect();
  const dataSource = new DataSource({
    type: 'postgres',
    url: databaseUrl,
    migrations: sessionMigrations,
    logging: false,
  });
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await dataSource.initialize();
    await dataSource.runMigrations({ transaction: 'all' });
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await lock.end(); // ends the session, which releases the lock
  }
}
