import { Inject, Injectable, Logger, Optional, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { INVALIDATE_ALL, INVALIDATION_CHANNEL } from '../store/session.sql.js';
import type { SessionCacheStatus } from '../health/cache-status.js';
import { LISTENER_SQL, PROBE_PREFIX } from './listener.sql.js';
import { SessionCache } from './session-cache.js';
import { SocketSessionRegistry } from '../socket/socket-session.registry.js';

/** The listener's connection settings: the app pool's (pg.Pool keeps what it was given in `options`). */
export const SESSION_LISTENER_CONNECTION = Symbol('SESSION_LISTENER_CONNECTION'); // pg.ClientConfig
/** How often the listener sends itself a probe notice, in ms (default 2 s); tests shorten it. */
export const SESSION_LISTENER_PROBE_MS = Symbol('SESSION_LISTENER_PROBE_MS');

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** A connection that lasted this long was healthy: the next loss starts the backoff afresh. */
const STABLE_AFTER_MS = 30_000;
export const DEFAULT_PROBE_MS = 2_000;

/**
 * Keeps this instance's SessionCache coherent with every other instance: one dedicated
 * connection (not from the pool: a pooled client would be handed to queries and LISTEN
 * would be lost on release) runs `LISTEN nest_pg_session`; each notice evicts the named
 * session, or everything for '*'. The cache is usable only while the listener provably
 * hears: a second connection sends a probe notice every few seconds, and until one comes
 * back (and whenever one does not come back before the next is due) the cache is emptied
 * and bypassed, so every request reads the database. A transaction pooler lets LISTEN succeed
 * and then delivers nothing; the probe catches that, and a connection that stops delivering,
 * within two probe intervals. When a connection errors or ends, the listener reconnects with
 * backoff (100 ms doubling to 5 s); notices sent meanwhile were lost, so the cache starts empty.
 */
@Injectable()
export class SessionInvalidationListener implements SessionCacheStatus, OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('SessionCache');
  private client: pg.Client | undefined;
  /** Sends the probes: another connection, as other instances' notices come from. */
  private prober: pg.Client | undefined;
  private listening = false;
  /** The last probe came back (and none is overdue). */
  private hearing = false;
  /** Payload of the probe in flight, undefined once it came back. */
  private pendingProbe: string | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private heardProbe: (() => void) | undefined;
  private warnedDeaf = false;
  private stopped = false;
  private backoffMs = MIN_BACKOFF_MS;
  private listeningSince = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly probeMs: number;

  constructor(
    private readonly cache: SessionCache,
    @Inject(SESSION_LISTENER_CONNECTION) private readonly connection: pg.ClientConfig,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
    @Optional() @Inject(SESSION_LISTENER_PROBE_MS) probeMs?: number,
    @Optional() private readonly sockets?: SocketSessionRegistry,
  ) {
    this.probeMs = probeMs ?? DEFAULT_PROBE_MS;
  }

  /** Whether there is a cache to keep coherent (no cache, no connection). For health checks. */
  get enabled(): boolean {
    return this.options.cache.enabled;
  }

  /** True while LISTEN is established and its probe notices come back (the cache serves lookups only then). */
  get connected(): boolean {
    return this.listening && this.hearing;
  }

  async onModuleInit(): Promise<void> {
    // No cache and no sockets, no connection (sockets need notices even without a cache).
    if (!this.enabled && !this.options.sockets.enabled) return;
    // The first attempt (and its first probe) is awaited so the cache works from the first request;
    // a database that is away does not stop the app: the cache stays bypassed and we keep retrying.
    await this.connect();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const clients = [this.client, this.prober];
    this.client = this.prober = undefined;
    this.dropped();
    await Promise.all(clients.map((c) => c?.end().catch(() => undefined)));
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    // TCP keepalive: a connection that silently died would otherwise look listening for hours
    // (the probes catch it too, within seconds).
    const open = () =>
      new pg.Client({
        ...this.connection,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        connectionTimeoutMillis: this.connection.connectionTimeoutMillis || 5_000,
      });
    const [client, prober] = [open(), open()];
    this.client = client;
    this.prober = prober;
    // Registered before connecting: an 'error' without a listener would crash the process.
    for (const c of [client, prober]) {
      c.on('error', (error) => this.lost(client, error));
      c.on('end', () => this.lost(client));
    }
    client.on('notification', (message) => {
      if (message.channel !== INVALIDATION_CHANNEL) return;
      const payload = message.payload;
      if (payload?.startsWith(PROBE_PREFIX)) return this.probeArrived(payload);
      if (!payload || payload === INVALIDATE_ALL) {
        this.cache.evictAll();
        this.sockets?.allChanged();
      } else {
        this.cache.evictSession(payload);
        this.sockets?.sessionChanged(payload);
      }
    });
    try {
      await Promise.all([client.connect(), prober.connect()]);
      // Bounded, so a stuck server cannot hold up start-up (onModuleInit awaits the first attempt).
      await client.query({ text: LISTENER_SQL.listen.text, query_timeout: 5_000 } as pg.QueryConfig);
    } catch (error) {
      this.lost(client, error);
      return;
    }
    if (this.client !== client || this.stopped) return; // lost or stopped while connecting
    this.listening = true;
    this.listeningSince = performance.now();
    this.probeTimer = setInterval(() => this.probe(client, prober), this.probeMs);
    this.probeTimer.unref();
    // The first probe is awaited (at most one interval), so a listener that hears serves from the start.
    const heard = new Promise<void>((resolve) => (this.heardProbe = resolve));
    this.probe(client, prober);
    await Promise.race([heard, new Promise((resolve) => setTimeout(resolve, this.probeMs).unref())]);
    this.heardProbe = undefined;
  }

  /** Sends the next probe; the previous one still missing means nothing arrives: bypass the cache. */
  private probe(client: pg.Client, prober: pg.Client): void {
    if (this.pendingProbe !== undefined) this.deaf();
    const payload = `${PROBE_PREFIX}${randomUUID()}`;
    this.pendingProbe = payload;
    prober
      .query({ text: LISTENER_SQL.probe.text, values: [payload], query_timeout: this.probeMs } as pg.QueryConfig)
      .catch((error: unknown) => this.lost(client, error));
  }

  private probeArrived(payload: string): void {
    if (payload !== this.pendingProbe) return; // another instance's probe, or a late one of ours
    this.pendingProbe = undefined;
    this.heardProbe?.();
    if (this.hearing) return;
    this.hearing = true;
    this.cache.resume(); // notices sent before now may have been missed: it starts empty
    this.sockets?.notified(true);
    if (this.warnedDeaf) this.logger.log('invalidation listener hears its probe notices again; cache in use');
    this.warnedDeaf = false;
  }

  /** LISTEN holds but its probe did not come back: the cache must not serve what it cannot hear about. */
  private deaf(): void {
    this.hearing = false;
    this.cache.suspend();
    this.sockets?.notified(false);
    if (this.warnedDeaf) return;
    this.warnedDeaf = true;
    this.logger.warn(
      `invalidation listener hears no notices: its probe did not come back within ${this.probeMs} ms; ` +
        'cache bypassed, every request reads the database. Behind a transaction pooler (PgBouncer ' +
        'pool_mode=transaction, Supavisor, RDS Proxy) LISTEN delivers nothing: connect through session ' +
        'pooling or directly, or turn the cache off (cache.enabled: false)',
    );
  }

  /** The connection failed or closed: bypass the cache now, reconnect later. Once per client. */
  private lost(client: pg.Client, error?: unknown): void {
    if (this.client !== client) return;
    const prober = this.prober;
    this.client = this.prober = undefined;
    this.dropped();
    client.end().catch(() => undefined);
    prober?.end().catch(() => undefined);
    if (this.stopped) return;
    // Only a connection that stayed up resets the backoff: one that a pooler or
    // idle_session_timeout drops right away must not reconnect (and flush the cache) every 100 ms.
    if (this.listeningSince > 0 && performance.now() - this.listeningSince >= STABLE_AFTER_MS)
      this.backoffMs = MIN_BACKOFF_MS;
    this.listeningSince = 0;
    this.logger.warn(
      `invalidation listener lost (${(error as Error | undefined)?.message ?? 'connection ended'}); ` +
        `cache bypassed, reconnecting in ${this.backoffMs} ms`,
    );
    this.retryTimer = setTimeout(() => void this.connect(), this.backoffMs);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }

  private dropped(): void {
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    this.pendingProbe = undefined;
    this.heardProbe?.();
    this.listening = false;
    this.hearing = false;
    this.cache.suspend();
    this.sockets?.notified(false);
  }
}

/** pg.ClientConfig from the TypeORM DataSource's pool (connection string, host, credentials, ssl, ...). */
export function listenerConnectionOf(pool: { options?: Record<string, unknown> }): pg.ClientConfig {
  const {
    max: _max,
    min: _min,
    idleTimeoutMillis: _idle,
    maxUses: _uses,
    allowExitOnIdle: _exit,
    Client: _client,
    ...client
  } = pool.options ?? {};
  return client as pg.ClientConfig;
}
