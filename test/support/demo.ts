import type { INestApplication, LoggerService } from '@nestjs/common';
import request from 'supertest';
import { createDemoApp } from '../../src/demo/create-app.js';
import { loadDemoConfig } from '../../src/demo/demo-config.js';
import { csrfTokenFor } from '../../src/session/csrf/csrf-token.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export type Adapter = 'express' | 'fastify';
export const ADAPTERS: Adapter[] = ['express', 'fastify'];

export interface RunningDemo {
  app: INestApplication;
  server: any;
  db: TestDatabase;
  close(): Promise<void>;
}

/**
 * In the pooler pass's transaction mode (test/support/pooler-pass.mjs), the demo runs as the
 * listener's warning tells an app behind a transaction pooler to: without the cache (whose
 * refusal there, health `degraded`, pooler.spec and pooler.e2e assert), unless a test sets it.
 */
function poolerPassEnv(): Record<string, string> {
  return process.env.NPS_TEST_POOL_MODE === 'transaction' ? { SESSION_CACHE: 'off' } : {};
}

/**
 * The demo app on a fresh database, configured through the same variables as `npm start`.
 * The password limits are off unless a test sets them: tests log in far more often than people.
 */
export async function startDemo(
  adapter: Adapter,
  env: Record<string, string> = {},
  existing?: { url: string },
  options: { logger?: LoggerService } = {},
): Promise<RunningDemo> {
  const db = existing ? undefined : await createTestDatabase();
  const url = existing?.url ?? db!.url;
  const config = loadDemoConfig(
    { LOGIN_RATE_LIMIT: '0', ACCOUNT_RATE_LIMIT: '0', ...poolerPassEnv(), ...env, HTTP_ADAPTER: adapter },
    url,
  );
  const app = await createDemoApp(config, { logger: options.logger ?? false });
  return {
    app,
    server: app.getHttpServer(),
    db: db!,
    async close() {
      await app.close();
      await db?.drop();
    },
  };
}

export const SID = '__Host-sid';

/** The session cookie's value from a response's Set-Cookie headers (undefined when none was set). */
export function sessionCookie(response: request.Response): string | undefined {
  const header = response.headers['set-cookie'] as unknown as string[] | undefined;
  const line = header?.find((h) => h.startsWith(`${SID}=`));
  return line?.slice(SID.length + 1).split(';')[0];
}

export function setCookieLine(response: request.Response): string | undefined {
  return (response.headers['set-cookie'] as unknown as string[] | undefined)?.find((h) => h.startsWith(`${SID}=`));
}

export interface LoggedIn {
  response: request.Response;
  token: string;
  sessionId: string;
  userId: string;
  csrfToken: string | undefined;
}

export async function login(
  server: any,
  username = 'alice',
  extraHeaders: Record<string, string> = {},
): Promise<LoggedIn> {
  const response = await request(server)
    .post('/auth/login')
    .set(extraHeaders)
    .send({ username, password: `${username}-password` })
    .expect(200);
  const token = sessionCookie(response) ?? response.body.token;
  return {
    response,
    token: token as string,
    sessionId: response.body.sessionId as string,
    userId: response.body.userId as string,
    csrfToken: response.body.csrfToken as string | undefined,
  };
}

/**
 * The headers a well-behaved browser app sends: the session cookie, and the CSRF token it read
 * from the `__Host-csrf` cookie (derived from the session token, so computed here the same way).
 * Attack tests use `bareCookie` to send the cookie alone, as a forged cross-site request would.
 */
export const cookie = (token: string) => ({ Cookie: `${SID}=${token}`, 'x-csrf-token': csrfTokenFor(token) });

export const bareCookie = (token: string) => ({ Cookie: `${SID}=${token}` });

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` passes or `timeoutMs` runs out; returns how long it took. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
}
