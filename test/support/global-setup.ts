import { randomBytes } from 'node:crypto';
// Jest loads global setup through require() without moduleNameMapper, so no '.js' suffix here.
// @ts-expect-error TS2835 (nodenext wants the suffix the runtime here must not have)
import { startEmbeddedPostgres } from '../../src/demo/embedded-postgres';

/**
 * Tests use DATABASE_URL when it is set; otherwise one embedded PostgreSQL for the whole run.
 * Each test file then creates its own database on that server (see database.ts), a copy of
 * one migrated template that global-teardown.ts drops.
 */
export default async function globalSetup(): Promise<void> {
  // The migrated database this run's test databases are copied from (database.ts builds it once).
  process.env.NPS_TEST_TEMPLATE = `nps_test_template_${randomBytes(6).toString('hex')}`;
  if (process.env.DATABASE_URL) {
    console.log(`\n[tests] using DATABASE_URL (${new URL(process.env.DATABASE_URL).host})`);
    return;
  }
  const started = Date.now();
  const db = await startEmbeddedPostgres();
  (globalThis as { __embeddedPostgres?: unknown }).__embeddedPostgres = db;
  process.env.DATABASE_URL = db.url; // inherited by the workers
  console.log(`\n[tests] embedded PostgreSQL on port ${db.port} (started in ${Date.now() - started} ms)`);
}
