import { Inject, Injectable, Logger } from '@nestjs/common';
import { Observable } from 'rxjs';
import type { ActiveSession } from '../active-session.js';
import { SessionValidator } from '../session-validator.js';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { handshakeOriginAllowed } from './socket-origin.js';
import type { HttpRequestLike } from '../transport/http.js';
import { closeClient, upgradeRequestOf } from './socket-client.js';
import { closeCodeOf, type SocketCloseReason } from './socket-close.js';
import { SocketSessionRegistry } from './socket-session.registry.js';

/** The handshake check still under way for a socket: the guard waits for it before a message. */
const pending = new WeakMap<object, Promise<ActiveSession | undefined>>();

/** The registry's ticket taken before the guard checked a request's session, for that request's whileLive(). */
const ticketOfSession = new WeakMap<ActiveSession, number>();

/** Takes the headers HTTP would send (Retry-After, a cleared cookie) and drops them: a socket has no response. */
const RESPONSE_SINK = { header: () => undefined };

/** What a socket.io middleware gets (`server.use()`). */
interface IoSocketLike {
  request: HttpRequestLike;
  once(event: 'disconnect', listener: () => void): unknown;
}

/** A `ws` WebSocket's close notification. */
interface Closable {
  once(event: 'close' | 'disconnect', listener: () => void): unknown;
}

/**
 * Sessions for gateways. At the handshake the session is read from the upgrade request (the
 * cookie, or `Authorization: Bearer`; never the URL, which proxies log) with the same rules
 * and reasons as HTTP, but without rotating or writing cookies: a socket cannot receive a new
 * token. A refused socket is closed with SOCKET_CLOSE_CODES; an accepted one is tracked by
 * the registry, which closes it when the session ends.
 *
 * ws: `handleConnection(client, request) { return this.sockets.accept(client, request); }`.
 * socket.io: `afterInit(server) { server.use(this.sockets.ioMiddleware()); }` (a refusal is a
 * `connect_error` whose `data` is `{ code, reason }`).
 */
@Injectable()
export class SessionSockets {
  private readonly logger = new Logger('SessionSockets');

  constructor(
    private readonly validator: SessionValidator,
    private readonly registry: SocketSessionRegistry,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {}

  /**
   * Checks a new socket's session; refuses (closes) it without one. Resolves to the session,
   * or undefined when the socket was refused. Guests are refused: a socket is a user's.
   */
  accept(client: object, request?: HttpRequestLike): Promise<ActiveSession | undefined> {
    const checked = this.check(client, upgradeRequestOf(client, request)).then(
      (outcome) => {
        if (outcome.ok) return outcome.session;
        closeClient(client, outcome.reason);
        return undefined;
      },
      (error: unknown) => {
        // Fail closed: the store did not answer; the client may retry.
        this.logger.warn(`socket refused, the session could not be checked: ${(error as Error).message}`);
        closeClient(client, 'missing');
        return undefined;
      },
    );
    pending.set(client, checked);
    return checked;
  }

  /** A socket.io middleware: the handshake fails with `connect_error` (`err.data = { code, reason }`). */
  ioMiddleware(): (socket: IoSocketLike, next: (error?: Error) => void) => void {
    return (socket, next) => {
      const checked = this.check(socket, socket.request);
      pending.set(
        socket,
        checked.then((o) => (o.ok ? o.session : undefined)).catch(() => undefined),
      );
      checked.then(
        (outcome) => next(outcome.ok ? undefined : refusal(outcome.reason)),
        (error: unknown) => {
          this.logger.warn(`socket refused, the session could not be checked: ${(error as Error).message}`);
          next(refusal('missing'));
        },
      );
    };
  }

  /** The socket's session once the handshake check is done; undefined when none, or it ended since. */
  async sessionOf(client: object): Promise<ActiveSession | undefined> {
    const session = await pending.get(client);
    return session && this.registry.isLive(client) ? session : undefined;
  }

  /** The socket was active (a guarded message): keeps the session alive at the touch interval. */
  activity(client: object): void {
    this.registry.activity(client).catch((error: unknown) => {
      this.logger.warn(`could not record socket activity: ${(error as Error).message}`);
    });
  }

  /** For SessionGuard, before it checks a request: undefined when sockets are off. @internal */
  ticket(): number | undefined {
    return this.options.sockets.enabled ? this.registry.ticket() : undefined;
  }

  /** For SessionGuard: `session` was checked after `ticket()` gave `ticket`. @internal */
  checkedAt(session: ActiveSession, ticket: number): void {
    ticketOfSession.set(session, ticket);
  }

  /**
   * Mirrors `source` until the session ends (revoked, logged out, expired: as a socket would
   * close), then completes: for `@Sse()` streams, whose request was checked by the guard. A
   * notice since that check (the guard's ticket) makes the registry read the session again at
   * once; a session the guard did not check is read again in any case.
   */
  whileLive<T>(session: ActiveSession, source: Observable<T>): Observable<T> {
    if (!this.options.sockets.enabled)
      throw new Error('nest-pg-session: SessionSockets.whileLive() needs the option sockets: { enabled: true }');
    return new Observable<T>((subscriber) => {
      // Closed like a ws socket: the registry needs nothing more of it.
      const stream = { readyState: 1, close: () => subscriber.complete() };
      this.registry.register(stream, session, ticketOfSession.get(session) ?? -1);
      const subscription = source.subscribe(subscriber);
      return () => {
        subscription.unsubscribe();
        this.registry.unregister(stream);
      };
    });
  }

  private async check(
    client: object,
    request: HttpRequestLike | undefined,
  ): Promise<{ ok: true; session: ActiveSession } | { ok: false; reason: SocketCloseReason }> {
    // Without the option nothing would ever close the socket: refuse rather than leave it open.
    if (!this.options.sockets.enabled)
      throw new Error('nest-pg-session: SessionSockets needs the option sockets: { enabled: true }');
    if (!request) return { ok: false, reason: 'missing' };
    // A cookie comes with whatever page opened the socket; a bearer token only with its holder's code.
    if (this.options.transport === 'cookie' && !handshakeOriginAllowed(request, this.options.csrf.allowedOrigins))
      return { ok: false, reason: 'origin_not_allowed' };
    const ticket = this.registry.ticket(); // a revoke while we check is not missed
    const outcome = await this.validator.validate(request, RESPONSE_SINK, false, false);
    if (!outcome.ok) return outcome;
    this.registry.register(client, outcome.session, ticket);
    (client as Partial<Closable>).once?.('close', () => this.registry.unregister(client));
    (client as Partial<Closable>).once?.('disconnect', () => this.registry.unregister(client));
    // A ws client that hung up during the check already sent 'close': forget it now.
    if (((client as { readyState?: number }).readyState ?? 1) > 1) this.registry.unregister(client);
    // A socket.io socket whose transport closed during the check (or that a later middleware
    // refused) never connects, so never sends 'disconnect': follow its underlying connection.
    const conn = (client as { conn?: { readyState?: string } & Partial<Closable> }).conn;
    conn?.once?.('close', () => this.registry.unregister(client));
    if (conn?.readyState !== undefined && conn.readyState !== 'open') this.registry.unregister(client);
    return outcome;
  }
}

function refusal(reason: SocketCloseReason): Error & { data: { code: number; reason: SocketCloseReason } } {
  return Object.assign(new Error(reason), { data: { code: closeCodeOf(reason), reason } });
}
