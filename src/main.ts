import 'reflect-metadata';
import { Logger, type INestApplication } from '@nestjs/common';
import { createDemoApp } from './demo/create-app.js';
import { loadDemoConfig } from './demo/demo-config.js';
import { startEmbeddedPostgres, takeOverShutdownSignals, type EmbeddedDatabase } from './demo/embedded-postgres.js';

/** How long app.close() may take (open requests, the pool, the cache listener) before the database goes anyway. */
const CLOSE_TIMEOUT_MS = 10_000;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

const logger = new Logger('Demo');
let starting: Promise<EmbeddedDatabase> | undefined;
let embedded: EmbeddedDatabase | undefined;
let creating: Promise<INestApplication> | undefined;
let app: INestApplication | undefined;
let stopping = false;

/**
 * `npm start`: the demo on PORT (default 3000), with a throwaway PostgreSQL unless DATABASE_URL
 * is set. The throwaway cluster is removed however the process ends: a signal (at any point,
 * start-up included), a second signal while stopping, a failed start, or a close that hangs.
 */
async function main(): Promise<void> {
  // Read the configuration before starting anything: a bad variable fails fast, with nothing to clean up.
  const config = loadDemoConfig(process.env, process.env.DATABASE_URL ?? '');
  takeOverShutdownSignals();
  for (const signal of SIGNALS) process.on(signal, () => void onSignal(signal));
  if (!config.databaseUrl) {
    logger.log('DATABASE_URL not set: starting an embedded PostgreSQL (data is thrown away on exit)');
    starting = startEmbeddedPostgres();
    embedded = await starting;
    if (stopping) return; // a signal came while it started: shutDown() stops it
    logger.log(`Embedded PostgreSQL in ${embedded.directory} (removed on exit)`);
    config.databaseUrl = embedded.url;
  }
  creating = createDemoApp(config);
  app = await creating;
  if (stopping) return; // a signal came during start-up: shutDown() closes the app
  await app.listen(config.port, '127.0.0.1');
  logger.log(
    `nest-pg-session demo (${config.adapter}, ${config.session.transport}) on http://localhost:${config.port}`,
  );
}

async function onSignal(signal: (typeof SIGNALS)[number]): Promise<void> {
  if (stopping) {
    // A second Ctrl-C: do not wait for requests or the pool; the cluster still goes.
    logger.warn(`${signal} again: stopping now`);
    embedded?.stopNow();
    process.exit(128 + SIGNAL_NUMBERS[signal]);
  }
  stopping = true;
  logger.log(`${signal}: shutting down`);
  // From here on the database goes away under whatever is still running (a migration at
  // start-up, the cache listener after Ctrl-C reached PostgreSQL too): expected, not a crash.
  process.on('uncaughtException', (error) => logger.warn(`while stopping: ${error.message}`));
  await shutDown();
  process.exit(0);
}

async function shutDown(): Promise<void> {
  // A signal during start-up: let the app finish starting (bounded), then close it as usual.
  const running =
    app ??
    (await within(
      creating?.catch(() => undefined),
      CLOSE_TIMEOUT_MS,
    ));
  if (running) {
    const closed = await within(
      running.close().then(
        () => true,
        (error) => {
          logger.warn(`app.close() failed: ${error}`);
          return false;
        },
      ),
      CLOSE_TIMEOUT_MS,
    );
    if (closed === undefined) logger.warn(`app.close() did not finish within ${CLOSE_TIMEOUT_MS} ms; stopping anyway`);
  }
  // A signal during start-up: wait for the cluster to be up (or to fail) so it can be stopped cleanly.
  const database = embedded ?? (await starting?.catch(() => undefined));
  await database?.stop();
}

/** `promise`'s value, or undefined once `ms` have passed. */
function within<T>(promise: Promise<T> | undefined, ms: number): Promise<T | undefined> {
  return Promise.race([promise, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref())]);
}

main().catch(async (error) => {
  if (stopping) return; // the start was cut short by a signal, whose handler exits
  stopping = true;
  console.error(error);
  await shutDown().catch(() => undefined);
  process.exit(1);
});
