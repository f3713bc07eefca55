// Re-runs the integration and e2e suites through a real PgBouncer (Debian's package) in front
// of the PostgreSQL at 127.0.0.1:5432: in transaction pooling mode with preparedStatements off
// (NPS_TEST_PREPARED_STATEMENTS=off for the tests' own modules, SESSION_PREPARED_STATEMENTS=off
// for demo processes), then in session pooling mode with the defaults. Each test database is
// reached through the pooler (NPS_TEST_POOLER_URL, read by test/support/database.ts); creating,
// migrating and dropping it go direct. In transaction mode demos run without the cache (what the
// listener's warning asks for there). Skipped, with a message, where pgbouncer is not
// installed or no server answers there. POOLER_PASS_MODES=transaction (or session) runs one;
// POOLER_PASS_PATHS=a,b runs those test paths only.
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { findPgBouncer, startPgBouncer } from './pgbouncer.mjs';
import { poolerModes, poolerPassFiles } from './postgres-passes.mjs';

const serverUrl = process.env.SECOND_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
if (!findPgBouncer()) {
  console.log('[pooler pass] skipped: pgbouncer is not installed (Debian: apt-get install pgbouncer)');
  process.exit(0);
}
const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 2_000 });
try {
  await client.connect();
  await client.end();
} catch (error) {
  console.log(`[pooler pass] skipped: no PostgreSQL answers at ${new URL(serverUrl).host} (${error.message})`);
  process.exit(0);
}

// What runs in each mode, and why the rest is left out: postgres-passes.mjs (shared with the
// direct second pass, which runs what these passes leave out).
const modes = poolerModes();
let failed = false;
for (const mode of modes) {
  const started = Date.now();
  // Server connections per test database: enough for the widest test pool (21) and its checks.
  const bouncer = await startPgBouncer({ serverUrl, poolMode: mode, poolSize: 40 });
  const env = {
    ...process.env,
    DATABASE_URL: serverUrl,
    NPS_TEST_POOLER_URL: bouncer.url('postgres'),
    NODE_OPTIONS: '--experimental-vm-modules',
    NPS_TEST_POOL_MODE: mode,
    // What an app behind a transaction pooler sets (demo processes read SESSION_*; the cache's
    // refusal there is asserted by pooler.spec and pooler.e2e, which set it themselves).
    ...(mode === 'transaction'
      ? { NPS_TEST_PREPARED_STATEMENTS: 'off', SESSION_PREPARED_STATEMENTS: 'off', SESSION_CACHE: 'off' }
      : {}),
  };
  const { paths, ignored, files } = poolerPassFiles(mode);
  console.log(
    `[pooler pass] ${files.length} files through PgBouncer (pool_mode=${mode}` +
      `${mode === 'transaction' ? ', preparedStatements off' : ''}) on port ${bouncer.port}: ${paths.join(' ')}; ` +
      `left out: ${ignored.join(', ')}`,
  );
  if (!files.length) {
    await bouncer.stop(); // Jest given no path would run every file, unit tests included
    continue;
  }
  const result = spawnSync('npx', ['jest', '--runTestsByPath', ...files], {
    stdio: 'inherit',
    env,
  });
  await bouncer.stop();
  console.log(
    `[pooler pass] pool_mode=${mode}: exit ${result.status} in ${Math.round((Date.now() - started) / 1000)} s`,
  );
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
