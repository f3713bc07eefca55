// A real PgBouncer (Debian's package) in front of a test PostgreSQL, in transaction or session
// pooling mode, for the tests and the pooler pass (test/support/pooler-pass.mjs). Every
// database name is passed through to the server (the `*` fallback entry), so the per-file test
// databases (test/support/database.ts) work without listing them. PgBouncer refuses to run as
// root: as root it runs as the `postgres` user (setpriv), in a temporary directory that user owns.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

/** The pgbouncer binary, or undefined when it is not installed. */
export function findPgBouncer() {
  const found = CANDIDATES.find((path) => existsSync(path));
  if (found) return found;
  const which = spawnSync('which', ['pgbouncer'], { encoding: 'utf8' });
  return which.status === 0 ? which.stdout.trim() : undefined;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts PgBouncer with `poolMode` ('transaction' | 'session') in front of the server of
 * `serverUrl`; resolves once it accepts a query. `url(database)` is that database through it.
 * `poolSize`: server connections per database; `maxServerConnections`: for all of them.
 */
export async function startPgBouncer({ serverUrl, poolMode, poolSize = 20, maxServerConnections = 50 }) {
  const binary = findPgBouncer();
  if (!binary) throw new Error('pgbouncer is not installed (Debian: apt-get install pgbouncer)');
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const dir = mkdtempSync(join(tmpdir(), 'nps-pgbouncer-'));
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const file = (name) => join(dir, name);
  writeFileSync(file('userlist.txt'), `"${user}" "${decodeURIComponent(server.password ?? '')}"\n`);
  writeFileSync(
    file('pgbouncer.ini'),
    [
      '[databases]',
      // The fallback entry: any database name goes to the same name on the server.
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '[pgbouncer]',
      `listen_addr = 127.0.0.1`,
      `listen_port = ${port}`,
      `unix_socket_dir =`,
      `auth_type = trust`,
      `auth_file = ${file('userlist.txt')}`,
      `pool_mode = ${poolMode}`,
      `default_pool_size = ${poolSize}`,
      `max_client_conn = 1000`,
      // All databases together: test files run in parallel, each on its own database, and the
      // server (max_connections 100) is shared; clients queue here instead of being refused there.
      `max_user_connections = ${maxServerConnections}`,
      // Give an idle server connection back soon, so another test database can have it.
      `server_idle_timeout = 5`,
      `admin_users = ${user}`,
      // Test databases come and go by the hundred: forget a pool soon after its database is dropped.
      `autodb_idle_timeout = 30`,
      `logfile = ${file('pgbouncer.log')}`,
      `pidfile = ${file('pgbouncer.pid')}`,
      `log_connections = 0`,
      `log_disconnections = 0`,
    ].join('\n') + '\n',
  );
  if (asRoot) {
    const { uid, gid } = userIds('postgres');
    for (const name of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(file(name), uid, gid);
  }
  // -q: nothing on stderr but what comes before the log file is open. Its stderr is a file, not a
  // pipe: a parent blocked in spawnSync (the pooler pass runs Jest so) drains no pipe, and
  // PgBouncer, blocked writing to a full one, would stop serving every client.
  // setpriv execs PgBouncer in place (runuser would fork, and not pass signals on), so the child
  // is PgBouncer itself and stop() reaches it.
  const [command, args] = asRoot
    ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', binary, '-q', file('pgbouncer.ini')]]
    : [binary, ['-q', file('pgbouncer.ini')]];
  const stderrFd = openSync(file('stderr.log'), 'w');
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', stderrFd] });
  closeSync(stderrFd);
  const stderr = () => readFileSync(file('stderr.log'), 'utf8');
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const base = new URL(serverUrl);
  base.hostname = '127.0.0.1';
  base.port = String(port);
  const url = (database) => {
    const u = new URL(base);
    u.pathname = `/${database}`;
    return u.toString();
  };
  const log = () => (existsSync(file('pgbouncer.log')) ? readFileSync(file('pgbouncer.log'), 'utf8') : '');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      await Promise.race([exited, sleep(5_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Up when a query through it answers (the fallback entry reaches the server's own database).
  const database = decodeURIComponent(server.pathname.slice(1)) || 'postgres';
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}): ${stderr()}${log()}`);
    const client = new pg.Client({ connectionString: url(database), connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (attempt >= 50) {
        await stop();
        throw new Error(`pgbouncer did not answer on port ${port}: ${error.message}\n${stderr()}${log()}`, {
          cause: error,
        });
      }
      await sleep(100);
    }
  }
  return { port, poolMode, url, log, stop };
}

function userIds(name) {
  const uid = Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`no user ${name} to run pgbouncer as`);
  return { uid, gid };
}
