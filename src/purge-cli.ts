import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import { DemoConfigError, purgeOptions } from './demo/demo-config.js';
import { PurgeStore } from './session/purge/purge.store.js';
import { SessionPurgeService } from './session/purge/session-purge.service.js';
import { resolveSessionOptions, SessionOptionsError } from './session/session.options.js';
import { StoreUnavailableError } from './session/store/pg-errors.js';

/**
 * `npm run purge`: one purge run against DATABASE_URL, then exit (for an external
 * scheduler, or by hand). Same lock as the in-app job, so it is safe next to running apps;
 * like any `runOnce()`, it claims no scheduled tick and writes no session_purge_runs row.
 * AUDIT_RETENTION, PURGE_BATCH_SIZE and PURGE_DUTY_CYCLE are read as by the demo. Exit code 0 when the run
 * finished or was skipped because another instance is purging, 1 when it failed.
 */
async function main(): Promise<number> {
  const logger = new Logger('PurgeCli');
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    logger.error(
      'DATABASE_URL is not set: point it at the database that holds user_sessions, e.g. DATABASE_URL=postgres://user@host:5432/app npm run purge',
    );
    return 2;
  }
  let options;
  try {
    options = resolveSessionOptions({ purge: { ...purgeOptions(process.env), enabled: false } });
  } catch (error) {
    if (error instanceof SessionOptionsError || error instanceof DemoConfigError) {
      logger.error(error.message);
      return 2;
    }
    throw error;
  }
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1, connectionTimeoutMillis: 5_000 });
  pool.on('error', () => undefined); // an idle connection dropping is reported by the query that needed it
  const purge = new SessionPurgeService(new PurgeStore(pool), options);
  process.once('SIGINT', () => void purge.onApplicationShutdown()); // stop after the current batch
  process.once('SIGTERM', () => void purge.onApplicationShutdown());
  try {
    await purge.runOnce();
    return 0;
  } catch (error) {
    const reason =
      error instanceof StoreUnavailableError ? `database unavailable: ${error.detail}` : (error as Error).message;
    logger.error(`purge failed: ${reason}`);
    return 1;
  } finally {
    await pool.end();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
