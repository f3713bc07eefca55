import { ConfigurableModuleBuilder, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import type { SessionAdminOptions } from './admin/admin.options.js';
import { SessionAuditLogEntity } from './audit/audit-log.entity.js';
import { monotonicNow, SessionCache } from './cache/session-cache.js';
import {
  DEFAULT_PROBE_MS,
  listenerConnectionOf,
  SESSION_LISTENER_CONNECTION,
  SESSION_LISTENER_PROBE_MS,
  SessionInvalidationListener,
} from './cache/session-invalidation.listener.js';
import { SessionAuditStore } from './audit/audit.store.js';
import { sessionAdminOpenApiProvider } from './admin/openapi.js';
import { sessionAdminControllerAt } from './admin/session-admin.controller.js';
import { SessionAdminGuard } from './admin/session-admin.guard.js';
import { SessionAdminService } from './admin/session-admin.service.js';
import { SessionAuditService } from './audit/session-audit.service.js';
import { SessionEvents } from './audit/session-events.js';
import { CsrfCookieTransport } from './csrf/csrf-cookie.transport.js';
import { CsrfGuard } from './csrf/csrf.guard.js';
import { FreshSessionGuard } from './guards/fresh-session.guard.js';
import { SessionGuard } from './guards/session.guard.js';
import { ModuleKeyStore } from './keys/module-key.store.js';
import { PurgeStore } from './purge/purge.store.js';
import { SessionPurgeService } from './purge/session-purge.service.js';
import { sessionPrivacyAdminControllerAt } from './privacy/privacy-admin.controller.js';
import { sessionPrivacyOpenApiProvider } from './privacy/privacy-openapi.js';
import { SessionPrivacyStore } from './privacy/privacy.store.js';
import { SessionPrivacyService } from './privacy/session-privacy.service.js';
import { AggregatedAuditLog } from './security/aggregated-audit.js';
import { TokenFloodDetector } from './security/token-flood.detector.js';
import { GuestCreationLimiter } from './guest/guest-creation.limiter.js';
import { SessionImpersonation } from './impersonation/session-impersonation.js';
import { SessionSecondFactor } from './second-factor/session-second-factor.js';
import { RealUserGuard } from './guards/real-user.guard.js';
import { SESSION_CACHE_STATUS, type SessionCacheStatus } from './health/cache-status.js';
import { SessionHealth } from './health/session-health.js';
import { createSessionMetrics } from './metrics/prometheus-session-metrics.js';
import { SessionMetrics } from './metrics/session-metrics.js';
import { SessionValidator } from './session-validator.js';
import { SessionSockets } from './socket/session-sockets.js';
import { SocketSessionRegistry } from './socket/socket-session.registry.js';
import { SESSION_OPTIONS, SESSION_TRANSPORT } from './session.constants.js';
import {
  adminPath,
  resolveSessionOptions,
  type ResolvedSessionOptions,
  type SessionModuleOptions,
} from './session.options.js';
import { SessionService } from './session.service.js';
import {
  SESSION_DATA_SOURCE,
  sessionDataSourceProvider,
  sessionRepositoryProviders,
} from './startup/session-data-source.js';
import { UserSessionEntity } from './store/session.entity.js';
import { SessionStore } from './store/session.store.js';
import { SessionDataCipher } from './encryption/session-data-cipher.js';
import { BearerTransport } from './transport/bearer.transport.js';
import { CookieTransport } from './transport/cookie.transport.js';
import type { SessionTransport } from './transport/session-transport.js';

/** Set where the module is imported (not inside the options factory), because they shape the module itself. */
export interface SessionModuleExtras {
  /** Make SessionService & co. injectable everywhere. Default true. */
  isGlobal?: boolean;
  /**
   * Register SessionGuard and then CsrfGuard as APP_GUARDs, so every route needs a session
   * unless @Public(), and unsafe cookie requests need the CSRF token. Default true.
   */
  globalGuard?: boolean;
  /** Name of the TypeORM DataSource to use, when the app has several. Default: the default one. */
  dataSource?: string;
  /**
   * The admin HTTP API. With forRoot it is simply the `admin` option. With forRootAsync, give
   * `admin: { enabled: true, path? }` beside useFactory (routes exist before the factory runs);
   * `authorize` may come from there or from the factory's options.
   */
  admin?: SessionAdminOptions;
}

export const SESSION_ENTITIES = [UserSessionEntity, SessionAuditLogEntity];

/** TypeORM's own pg pool: the module speaks SQL through it (prepared statements on the hot path unless `preparedStatements: false`), no second pool. */
function poolOf(dataSource: DataSource): Pool {
  return (dataSource.driver as unknown as { master: Pool }).master;
}

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: SESSION_MODULE_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SessionModuleOptions>({ moduleName: 'Session' })
  .setClassMethodName('forRoot')
  // Every extra that is not a SessionModuleOptions field needs a key here (even undefined):
  // forRoot() strips only these keys from the options, and validation refuses unknown ones.
  .setExtras<SessionModuleExtras>({ isGlobal: true, globalGuard: true, dataSource: undefined }, withSessionProviders)
  .build();

function withSessionProviders(definition: DynamicModule, extras: SessionModuleExtras): DynamicModule {
  const providers: Provider[] = [
    // Names TypeOrmModule when there is no DataSource, and refuses to start without the session tables.
    sessionDataSourceProvider(extras.dataSource),
    {
      provide: SESSION_OPTIONS,
      // Validated here, so a bad option stops the app at start-up with a message naming it.
      useFactory: (raw: SessionModuleOptions) => resolveSessionOptions(raw, { admin: extras.admin }),
      inject: [SESSION_MODULE_OPTIONS],
    },
    {
      provide: SESSION_TRANSPORT,
      useFactory: (o: ResolvedSessionOptions): SessionTransport => {
        if (o.transport === 'bearer') return new BearerTransport(o.bearerRotationHeader);
        const cookie = new CookieTransport(o.cookie);
        return o.csrf.enabled && o.csrf.cookieName
          ? new CsrfCookieTransport(cookie, o.cookie, o.csrf.cookieName)
          : cookie;
      },
      inject: [SESSION_OPTIONS],
    },
    {
      provide: SessionMetrics,
      // Async: prom-client is imported here, and only when metrics are enabled.
      useFactory: (o: ResolvedSessionOptions, dataSource: DataSource) =>
        createSessionMetrics(o.metrics, poolOf(dataSource)),
      inject: [SESSION_OPTIONS, SESSION_DATA_SOURCE],
    },
    {
      provide: SessionCache,
      // Always present (a disabled one serves nothing), so the hot path has one shape.
      useFactory: (o: ResolvedSessionOptions, metrics: SessionMetrics) =>
        new SessionCache(
          o.cache.enabled,
          o.cache.maxEntries,
          o.cache.ttlMs,
          monotonicNow,
          metrics.enabled ? metrics : undefined,
        ),
      inject: [SESSION_OPTIONS, SessionMetrics],
    },
    {
      provide: SESSION_LISTENER_CONNECTION,
      useFactory: (dataSource: DataSource) =>
        listenerConnectionOf(poolOf(dataSource) as Pool & { options?: Record<string, unknown> }),
      inject: [SESSION_DATA_SOURCE],
    },
    // How often the listener proves it hears (a provider of its own, so tests can shorten it).
    { provide: SESSION_LISTENER_PROBE_MS, useValue: DEFAULT_PROBE_MS },
    SessionInvalidationListener,
    // Read by SessionHealth: the listener says whether there is a cache and whether it listens.
    { provide: SESSION_CACHE_STATUS, useExisting: SessionInvalidationListener },
    {
      provide: SessionStore,
      // The store speaks SQL to TypeORM's own pg pool: one pool, prepared statements on the hot path.
      // It tells the local cache what it changed; other instances learn it by NOTIFY.
      useFactory: (
        dataSource: DataSource,
        events: SessionEvents,
        cache: SessionCache,
        metrics: SessionMetrics,
        o: ResolvedSessionOptions,
      ) =>
        new SessionStore(poolOf(dataSource), {
          events,
          changes: cache,
          metrics: metrics.enabled ? metrics : undefined,
          notify: o.cache.notify,
          preparedStatements: o.preparedStatements,
          cipher: o.encryption && new SessionDataCipher(o.encryption.keys, o.encryption),
        }),
      inject: [SESSION_DATA_SOURCE, SessionEvents, SessionCache, SessionMetrics, SESSION_OPTIONS],
    },
    {
      provide: SessionHealth,
      useFactory: (
        dataSource: DataSource,
        purge: SessionPurgeService,
        o: ResolvedSessionOptions,
        cache?: SessionCacheStatus,
      ) => new SessionHealth(poolOf(dataSource), purge, cache, o.purge.enabled),
      inject: [SESSION_DATA_SOURCE, SessionPurgeService, SESSION_OPTIONS, SESSION_CACHE_STATUS],
    },
    {
      provide: ModuleKeyStore,
      useFactory: (dataSource: DataSource) => new ModuleKeyStore(poolOf(dataSource)),
      inject: [SESSION_DATA_SOURCE],
    },
    {
      provide: SessionAuditStore,
      useFactory: (dataSource: DataSource, keys: ModuleKeyStore) =>
        new SessionAuditStore(poolOf(dataSource), undefined, keys),
      inject: [SESSION_DATA_SOURCE, ModuleKeyStore],
    },
    {
      provide: PurgeStore,
      useFactory: (dataSource: DataSource, cache: SessionCache, o: ResolvedSessionOptions) =>
        new PurgeStore(poolOf(dataSource), cache, o.cache.notify),
      inject: [SESSION_DATA_SOURCE, SessionCache, SESSION_OPTIONS],
    },
    {
      provide: SessionPrivacyStore,
      useFactory: (
        dataSource: DataSource,
        keys: ModuleKeyStore,
        cache: SessionCache,
        events: SessionEvents,
        o: ResolvedSessionOptions,
      ) => new SessionPrivacyStore(poolOf(dataSource), { keys, changes: cache, events, notify: o.cache.notify }),
      inject: [SESSION_DATA_SOURCE, ModuleKeyStore, SessionCache, SessionEvents, SESSION_OPTIONS],
    },
    SessionPrivacyService,
    SessionEvents,
    AggregatedAuditLog,
    TokenFloodDetector,
    GuestCreationLimiter,
    SessionImpersonation,
    SessionSecondFactor,
    SessionValidator,
    SessionService,
    SessionGuard,
    CsrfGuard,
    FreshSessionGuard,
    RealUserGuard,
    SessionAuditService,
    SessionAdminService,
    SessionAdminGuard,
    SessionPurgeService,
    SocketSessionRegistry,
    SessionSockets,
  ];
  // Order matters: Nest runs global guards in registration order, and CsrfGuard needs the session.
  if (extras.globalGuard !== false)
    providers.push({ provide: APP_GUARD, useExisting: SessionGuard }, { provide: APP_GUARD, useExisting: CsrfGuard });
  // Off by default: the routes exist only when enabled where the module is imported.
  const admin =
    extras.admin?.enabled === true
      ? [sessionAdminControllerAt(adminPath(extras.admin)), sessionPrivacyAdminControllerAt(adminPath(extras.admin))]
      : [];
  // OpenAPI docs when @nestjs/swagger is installed
  if (admin.length > 0) providers.push(sessionAdminOpenApiProvider, sessionPrivacyOpenApiProvider);
  return {
    ...definition,
    global: extras.isGlobal !== false,
    providers: [
      ...(definition.providers ?? []),
      ...providers,
      ...sessionRepositoryProviders(SESSION_ENTITIES, extras.dataSource),
    ],
    controllers: [...(definition.controllers ?? []), ...admin],
    exports: [
      ...(definition.exports ?? []),
      SESSION_OPTIONS,
      SESSION_TRANSPORT,
      SessionStore,
      SessionValidator,
      SessionService,
      SessionGuard,
      CsrfGuard,
      FreshSessionGuard,
      RealUserGuard,
      AggregatedAuditLog,
      TokenFloodDetector,
      SessionEvents,
      SessionAuditService,
      SessionAdminService,
      SessionPrivacyService,
      SessionPurgeService,
      SessionCache,
      SessionInvalidationListener,
      SessionMetrics,
      SessionHealth,
      SessionSockets,
    ],
  };
}
