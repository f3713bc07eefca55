import type { INestApplicationContext } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { SessionCache } from '../cache/session-cache.js';
import { parseDuration, type Duration } from '../duration.js';
import type { DefaultSessionData, SessionDataPatch } from '../session-data.types.js';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { SessionService } from '../session.service.js';
import { poolOf, SESSION_DATA_SOURCE } from '../startup/session-data-source.js';
import type { Statement } from '../store/statement.js';
import { TESTING_SQL } from './testing.sql.js';

/** What `createTestSession` makes: whose session, with which data, as which client. */
export interface TestSessionOptions<TData extends object = DefaultSessionData> {
  /** Whose session it is. */
  userId: string;
  /** The session's first data, as `create({ data })` takes it. */
  data?: SessionDataPatch<TData>;
  /**
   * The client address and `User-Agent` the session records at login. Unset: none, and the
   * first request records its own (an `ip_changed` audit row, as after any move). Give the
   * test client's own when a test counts audit rows or the app rejects a changed user agent.
   */
  ip?: string;
  /** See `ip`. */
  userAgent?: string;
  /** Create it even when NODE_ENV is 'production' (refused otherwise). */
  allowProduction?: boolean;
}

/** A logged-in session made for a test, and the levers to end it. */
export interface TestSession {
  /** The session's public id (as in the device list and the audit log). */
  readonly sessionId: string;
  readonly userId: string;
  /** The app's transport, which decides the headers. */
  readonly transport: 'cookie' | 'bearer';
  /** The session token, as the client holds it. */
  readonly token: string;
  /** Cookie transport: the `Cookie` header value (`__Host-sid=...`). */
  readonly cookie?: string;
  /** Bearer transport: the `Authorization` header value (`Bearer ...`). */
  readonly authorization?: string;
  /** Cookie transport with CSRF on: what unsafe requests send in the CSRF header. */
  readonly csrfToken?: string;
  /** The headers a well-behaved client sends: the cookie and the CSRF header, or Authorization. */
  headers(): Record<string, string>;
  /** Moves the session's absolute expiry into the past: the next request answers 401 `absolute_timeout`. */
  expire(): Promise<void>;
  /** Moves its idle expiry into the past: the next request answers 401 `idle_timeout`. */
  expireIdle(): Promise<void>;
  /** Dates the last authentication `ago` back, for `@RequireFreshSession()` (401 `reauth_required` past its maxAge). */
  authenticatedAgo(ago: Duration): Promise<void>;
  /** Revokes it as `SessionService.revoke()` does (audited, reason 'user'): the next request answers 401 `revoked`. */
  revoke(): Promise<void>;
}

/**
 * Creates a logged-in session in a running app, through the app's own SessionService (a fresh
 * random token, stored only as its hash, audited like any login), so a test needs no login
 * route or password. The app is what `Test.createTestingModule(...).createNestApplication()`
 * (or NestFactory) gave, Express or Fastify, initialised.
 */
export async function createTestSession<TData extends object = DefaultSessionData>(
  app: Pick<INestApplicationContext, 'get'>,
  options: TestSessionOptions<NoInfer<TData>>,
): Promise<TestSession> {
  if (process.env.NODE_ENV === 'production' && options.allowProduction !== true)
    throw new Error(
      'nest-pg-session/testing: refusing to create a session with NODE_ENV=production. ' +
        'createTestSession logs anyone in without a password and is meant for tests; ' +
        'pass allowProduction: true if this really is a test run.',
    );
  const sessions = app.get(SessionService, { strict: false });
  const settings = app.get<symbol, ResolvedSessionOptions>(SESSION_OPTIONS, { strict: false });
  const request = {
    headers: options.userAgent === undefined ? {} : { 'user-agent': options.userAgent },
    ip: options.ip,
  };
  const response = new HeaderRecorder();
  const created = await sessions.create<TData>(request, response, { userId: options.userId, data: options.data });

  const transport = settings.transport;
  const token = created.token ?? response.cookieValue(settings.cookie.name);
  if (token === undefined) throw new Error('nest-pg-session/testing: the app sent no session token');
  const csrfToken = transport === 'cookie' && settings.csrf.enabled ? created.csrfToken : undefined;
  const cookie = transport === 'cookie' ? `${settings.cookie.name}=${token}` : undefined;
  const authorization = transport === 'bearer' ? `Bearer ${token}` : undefined;

  const moveClock = async (statement: Statement, extra: unknown[] = []) => {
    const pool = poolOf(app.get<symbol, DataSource>(SESSION_DATA_SOURCE, { strict: false }));
    const { rowCount } = await pool.query(statement.text, [created.sessionId, settings.cache.notify, ...extra]);
    // This instance's cache forgets the session now; the others when the notice arrives.
    app.get(SessionCache, { strict: false }).evictSession(created.sessionId);
    if (rowCount !== 1)
      throw new Error(`nest-pg-session/testing: session ${created.sessionId} is gone (logged out, revoked or purged)`);
  };

  return {
    sessionId: created.sessionId,
    userId: created.userId,
    transport,
    token,
    ...(cookie ? { cookie } : {}),
    ...(authorization ? { authorization } : {}),
    ...(csrfToken ? { csrfToken } : {}),
    headers: () => ({
      ...(cookie ? { Cookie: cookie } : {}),
      ...(csrfToken ? { [settings.csrf.headerName]: csrfToken } : {}),
      ...(authorization ? { Authorization: authorization } : {}),
    }),
    expire: () => moveClock(TESTING_SQL.expireAbsolute),
    expireIdle: () => moveClock(TESTING_SQL.expireIdle),
    authenticatedAgo: (ago) => {
      const ms = parseDuration(ago);
      if (ms === undefined)
        throw new TypeError(`nest-pg-session/testing: authenticatedAgo(${String(ago)}) is not a duration`);
      return moveClock(TESTING_SQL.authenticatedAgo, [ms]);
    },
    revoke: async () => {
      if (!(await sessions.revoke(created.sessionId, { reason: 'user' })))
        throw new Error(`nest-pg-session/testing: session ${created.sessionId} was not live`);
    },
  };
}

/** Stands in for the HTTP response the session is created on: keeps the headers written to it. */
class HeaderRecorder {
  private readonly setCookies: string[] = [];

  append(name: string, value: string): void {
    if (name.toLowerCase() === 'set-cookie') this.setCookies.push(value);
  }

  setHeader(name: string, value: string): void {
    if (name.toLowerCase() === 'set-cookie') this.setCookies.splice(0, this.setCookies.length, value);
  }

  cookieValue(name: string): string | undefined {
    const line = this.setCookies.findLast((candidate) => candidate.startsWith(`${name}=`));
    return line?.slice(name.length + 1).split(';')[0];
  }
}
