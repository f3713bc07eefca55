// Runs integration and e2e tests directly against the PostgreSQL at 127.0.0.1:5432 (v15 on this
// machine kind and CI), so two major versions are covered. When the transaction-mode pooler pass
// (pooler-pass.mjs, run next by `npm test`) will send the other files' statements to that same
// server, only the files it leaves out run here: see postgres-passes.mjs. Skipped, with a
// message, where no server answers there.
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { directPassPlan, FIRST_SERVER_ONLY, NO_SHARED_SERVER } from './postgres-passes.mjs';

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
const { files, reason } = directPassPlan();
console.log(
  `[second pass] ${files.length} integration and e2e files directly against PostgreSQL ${version} at ` +
    `${new URL(url).host}: ${reason}; never here: ${NO_SHARED_SERVER.join(', ')}; ` +
    `first server only (SECOND_PASS_FULL=1 runs them): ${FIRST_SERVER_ONLY.join(', ')}\n  ${files.join('\n  ')}`,
);
// Jest given no path would run every file, unit tests included.
if (!files.length) process.exit(0);
const started = Date.now();
const result = spawnSync('npx', ['jest', '--runTestsByPath', ...files], {
  stdio: 'inherit',
  env: { ...process.env, DATABASE_URL: url, NODE_OPTIONS: '--experimental-vm-modules' },
});
console.log(`[second pass] exit ${result.status} in ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(result.status ?? 1);
