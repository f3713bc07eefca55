// Which integration and e2e files run in the passes against the PostgreSQL at 127.0.0.1:5432
// (v15 on this machine kind and CI): the direct second pass (second-postgres-pass.mjs) and the
// PgBouncer passes (pooler-pass.mjs). One place, so "PG15 coverage" is computed, not kept in sync
// by hand: the pooler passes already send every statement of the files they run to that server,
// so the direct pass runs only what they leave out, or everything where pgbouncer is missing.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPgBouncer } from './pgbouncer.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PASS_DIRS = ['test/integration', 'test/e2e'];

// Left out of every pass on that server: the package test (no database of its own) and the
// files that start, stop and restart an embedded server of their own (they would not touch the
// server at 5432 at all). Patterns, as for Jest's --testPathIgnorePatterns.
export const NO_SHARED_SERVER = ['package.e2e', 'faults.e2e', 'database-outage.e2e', 'purge-outage'];

// Run on the first server only (SECOND_PASS_FULL=1 or POOLER_PASS_FULL=1 runs them again): what
// they assert lives in the HTTP layer or the process, and the statements they send are the ones
// the other files already send to the second server, so a second server version or a pooler
// cannot change their outcome. Together about 100 s of a 2-core CI run.
export const FIRST_SERVER_ONLY = [
  'demo-hardening.e2e', // slow and aborted bodies, the in-memory password-attempt limiters
  'demo-shutdown.e2e', // signals to the demo process and its own throwaway PostgreSQL
  'security-csrf.e2e', // Origin, Fetch Metadata and token checks before any statement
  'csrf-origin-message.e2e', // the wording of a CSRF refusal
  'dev-cookie-warning.e2e', // a log line about the Secure cookie attribute
  'fuzz.e2e', // hostile HTTP input refused before it reaches a statement
];

/** What may run on the second server: all but NO_SHARED_SERVER, and FIRST_SERVER_ONLY unless a full pass is asked for. */
export function onSecondServer(env = process.env) {
  const full = env.SECOND_PASS_FULL === '1' || env.POOLER_PASS_FULL === '1';
  return specFiles(PASS_DIRS, [...NO_SHARED_SERVER, ...(full ? [] : FIRST_SERVER_ONLY)]);
}

// Left out of both pooler modes: the pooler tests, which start a PgBouncer of their own (the
// direct passes run them); session-health.spec, which asserts the error categories PostgreSQL
// gives for a dropped database or a terminated connection, where PgBouncer answers late (a
// timeout) instead.
export const NOT_THROUGH_POOLER = [
  ...NO_SHARED_SERVER,
  'pooler.spec',
  'pooler.e2e',
  'session-health.spec',
  'session-logs.spec', // the same: it asserts the cause PostgreSQL gives for a dropped database
];

// Left out in transaction mode only, each for a reason of its own:
export const NOT_IN_TRANSACTION_MODE = [
  // Its second instance's own LISTEN client (not the module's) is the test's witness of every
  // NOTIFY; through a transaction pooler that client hears nothing, which pooler.spec and the
  // listener probe already prove loudly. The cached suites run in session mode.
  'session-cache.spec',
  // Instances with SESSION_CACHE=on (the demo's default) assert a revoke travels by NOTIFY in
  // milliseconds; behind a transaction pooler the listener reports down instead (pooler.e2e
  // proves that path: cache bypassed, revocation seen at once).
  'multi-instance.e2e',
  // It checks the listener against a connection that delivers (probe heard, then stopped);
  // through a transaction pooler it must refuse from the start instead, as pooler.spec asserts.
  'listener-probe.spec',
  // Sockets close within 1 s by NOTIFY; behind a transaction pooler the listener hears nothing,
  // so they close within sockets.recheckInterval instead (session-socket-transports.spec proves
  // that path with NOTIFY off). They run in session mode.
  'websocket.e2e',
  'session-websocket.spec',
  'session-socketio.spec',
  'session-socket-transports.spec', // its SSE stream, too, ends by NOTIFY within 1 s
];

// Session pooling gives each client a server session of its own for as long as it is connected,
// as a direct connection does: what differs is only what it does between clients (DISCARD ALL).
// So session mode runs the files that lean on session state (LISTEN/NOTIFY across instances,
// the purge across instances, the listener probe), not everything again; POOLER_PASS_FULL=1
// runs integration and e2e in both modes. Transaction mode, where behaviour differs, runs all.
export const SESSION_MODE_FILES = [
  'test/integration/session-cache.spec.ts',
  'test/integration/listener-probe.spec.ts',
  'test/integration/purge.spec.ts',
  'test/integration/purge-tick.spec.ts',
  'test/integration/session-store.spec.ts',
  'test/e2e/multi-instance.e2e.spec.ts',
  'test/e2e/websocket.e2e.spec.ts',
  'test/integration/session-websocket.spec.ts',
  'test/integration/session-socketio.spec.ts',
  'test/integration/session-socket-transports.spec.ts',
];

/** The spec files under `paths` (directories or files, relative to the root), minus `ignored`. */
export function specFiles(paths, ignored = []) {
  const patterns = ignored.map((pattern) => new RegExp(pattern));
  const found = [];
  const walk = (path) => {
    if (statSync(join(ROOT, path)).isDirectory())
      for (const entry of readdirSync(join(ROOT, path)).sort()) walk(join(path, entry));
    else if (path.endsWith('.spec.ts')) found.push(path);
  };
  for (const path of paths) walk(relative(ROOT, join(ROOT, path)));
  return found.filter((file) => !patterns.some((pattern) => pattern.test(file)));
}

/** The modes pooler-pass.mjs runs (POOLER_PASS_MODES, default both). */
export function poolerModes(env = process.env) {
  return (env.POOLER_PASS_MODES ?? 'transaction,session').split(',');
}

/** What pooler-pass.mjs runs in `mode`: the paths it was given, what it leaves out, the files. */
export function poolerPassFiles(mode, env = process.env) {
  const paths =
    env.POOLER_PASS_PATHS?.split(',') ?? // one file or a few, when debugging
    (mode === 'session' && env.POOLER_PASS_FULL !== '1' ? SESSION_MODE_FILES : PASS_DIRS);
  const ignored = [
    ...NOT_THROUGH_POOLER,
    ...(env.POOLER_PASS_FULL === '1' ? [] : FIRST_SERVER_ONLY),
    ...(mode === 'transaction' ? NOT_IN_TRANSACTION_MODE : []),
  ];
  return { paths, ignored, files: specFiles(paths, ignored) };
}

/**
 * The direct pass's files: everything the pooler passes (which `npm test` runs next, on the same
 * server) leave out, or everything when they will not run (no pgbouncer), minus what cannot use
 * the shared server. Session pooling hands each client a server session of its own, as a direct
 * connection does, so a file it runs has seen that server. `reason` says which, for the log.
 */
export function directPassPlan(env = process.env, pgbouncer = findPgBouncer()) {
  const all = onSecondServer(env);
  if (env.SECOND_PASS_FULL === '1') return { files: all, reason: 'SECOND_PASS_FULL=1: all of them' };
  if (!pgbouncer)
    return { files: all, reason: 'all of them: pgbouncer is not installed, so no pooler pass will reach this server' };
  const covered = new Set(poolerModes(env).flatMap((mode) => poolerPassFiles(mode, env).files));
  const counts = poolerModes(env).map((mode) => `${poolerPassFiles(mode, env).files.length} in ${mode} mode`);
  return {
    files: all.filter((file) => !covered.has(file)),
    reason:
      `what the pooler passes leave out; they run the other ${covered.size} of ${all.length} on this server ` +
      `through PgBouncer (${counts.join(', ')}; SECOND_PASS_FULL=1 runs all here)`,
  };
}
