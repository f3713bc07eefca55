// Jest loads global setup through require() without moduleNameMapper, so no '.js' suffix here.
// @ts-expect-error TS2835 (nodenext wants the suffix the runtime here must not have)
import { startEmbeddedPostgres } from '../../src/demo/embedded-postgres';

/**
 * Tests use DATABASE_URL when it is set; otherwise one embedded PostgreSQL for the whole run.
 * Each test file then creates its own database on that server (see database.ts).
 */
export default async function globalSetup(): Promise<void> {
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
