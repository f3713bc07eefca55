import pg from 'pg';
import type { EmbeddedDatabase } from '../../src/demo/embedded-postgres.js';

export default async function globalTeardown(): Promise<void> {
  const template = process.env.NPS_TEST_TEMPLATE;
  if (template && process.env.DATABASE_URL) {
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    try {
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
    } catch (error) {
      console.warn(`[tests] could not drop the template database ${template}: ${(error as Error).message}`);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
  await (globalThis as { __embeddedPostgres?: EmbeddedDatabase }).__embeddedPostgres?.stop();
}
