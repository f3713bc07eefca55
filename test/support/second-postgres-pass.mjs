// Re-runs the integration and e2e suites against the PostgreSQL at 127.0.0.1:5432 (v15 on
// this machine kind and CI), so two major versions are covered. Skipped, with a message,
// where no server answers there.
import { spawnSync } from 'node:child_process';
import pg from 'pg';

const url = process.env.SECOND_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
let version;
try {
  await client.connect();
  version = (await client.query('SHOW server_version')).rows[0].server_version;
  await client.end();
} catch (error) {
  console.log(`[second pass] skipped: no PostgreSQL answers at ${new URL(url).host} (${error.message})`);
  process.exit(0);
}
console.log(`[second pass] integration and e2e tests against PostgreSQL ${version} at ${new URL(url).host}`);
// Left out: the package test (no database of its own) and the files that start their own
// embedded server to stop and restart it (they would not touch the server at 5432 at all).
const notHere = ['package.e2e', 'faults.e2e', 'database-outage.e2e', 'purge-outage'];
const result = spawnSync(
  'npx',
  ['jest', 'test/integration', 'test/e2e', '--testPathIgnorePatterns', notHere.join('|')],
  {
    stdio: 'inherit',
    env: { ...process.env, DATABASE_URL: url, NODE_OPTIONS: '--experimental-vm-modules' },
  },
);
process.exit(result.status ?? 1);
