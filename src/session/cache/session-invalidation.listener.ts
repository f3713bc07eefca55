import { Inject, Injectable, Logger, Optional, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import pg from 'pg';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { INVALIDATE_ALL, INVALIDATION_CHANNEL } from '../store/session.sql.js';
import type { SessionCacheStatus } from '../health/cache-status.js';
import { SessionCache } from './session-cache.js';
import { SocketSessionRegistry } from '../socket/socket-session.registry.js';

/** The listener's connection settings: the app pool's (pg.Pool keeps what it was given in `options`). */
export const SESSION_LISTENER_CONNECTION = Symbol('SESSION_LISTENER_CONNECTION'); // pg.ClientConfig

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** A connection that lasted this long was healthy: the next loss starts the backoff afresh. */
const STABLE_AFTER_MS = 30_000;

/**
 * Keeps this instance's SessionCache coherent with every other instance: one dedicated
 * connection (not from the pool: a pooled client would be handed to queries and LISTEN
 * would be lost on release) runs `LISTEN nest_pg_session`; each notice evicts the named
 * session, or everything for '*'. The cache is usable only while LISTEN holds: when the
 * connection errors or ends the cache is emptied and bypassed (every request reads the
 * database), the listener reconnects with backoff (100 ms doubling to 5 s), and once LISTEN
 * is back the cache is emptied again, since notices sent meanwhile were lost.
 */
@Injectable()
export class SessionInvalidationListener implements SessionCacheStatus, OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('SessionCache');
  private client: pg.Client | undefined;
  private listening = false;
  private stopped = false;
  private backoffMs = MIN_BACKOFF_MS;
  private listeningSince = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cache: SessionCache,
    @Inject(SESSION_LISTENER_CONNECTION) private readonly connection: pg.ClientConfig,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
    @Optional() private readonly sockets?: SocketSessionRegistry,
  ) {}

  /** Whether there is a cache to keep coherent (no cache, no connection). For health checks. */
  get enabled(): boolean {
    return this.options.cache.enabled;
  }

  /** True while LISTEN is established (the cache serves lookups only then). For health checks. */
  get connected(): boolean {
    return this.listening;
  }

  async onModuleInit(): Promise<void> {
    // No cache and no sockets, no connection (sockets need notices even without a cache).
    if (!this.enabled && !this.options.sockets.enabled) return;
    // The first attempt is awaited so the cache works from the first request; a database
    // that is away does not stop the app: the cache stays bypassed and we keep retrying.
    await this.connect();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    this.dropped();
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    // TCP keepalive: a connection that silently died would otherwise look listening for hours.
    // With the kernel's default probe count that still takes minutes to notice; meanwhile what
    // a missed notice can leave stale is bounded by the cache TTL (at most 60 s).
    const client = new pg.Client({
      ...this.connection,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: this.connection.connectionTimeoutMillis || 5_000,
    });
    this.client = client;
    // Registered before connecting: an 'error' without a listener would crash the process.
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client));
    client.on('notification', (message) => {
      if (message.channel !== INVALIDATION_CHANNEL) return;
      if (!message.payload || message.payload === INVALIDATE_ALL) {
        this.cache.evictAll();
        this.sockets?.allChanged();
      } else {
        this.cache.evictSession(message.payload);
        this.sockets?.sessionChanged(message.payload);
      }
    });
    try {
      await client.connect();
      // Bounded, so a stuck server cannot hold up start-up (onModuleInit awaits the first attempt).
      await client.query({ text: `LISTEN ${INVALIDATION_CHANNEL}`, query_timeout: 5_000 } as pg.QueryConfig);
    } catch (error) {
      this.lost(client, error);
      return;
    }
    if (this.client !== client || this.stopped) return; // lost or stopped while connecting
    this.listening = true;
    this.listeningSince = performance.now();
    this.cache.resume();
    this.sockets?.notified(true);
  }

  /** The connection failed or closed: bypass the cache now, reconnect later. Once per client. */
  private lost(client: pg.Client, error?: unknown): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.dropped();
    client.end().catch(() => undefined);
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
    this.listening = false;
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
