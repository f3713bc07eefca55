import { runSessionMigrations } from '../session/startup/run-migrations.js';

/** Runs the session migrations (the demo, the tests and the bench call this before they start). */
export async function runMigrations(databaseUrl: string): Promise<void> {
  await runSessionMigrations(databaseUrl);
}
