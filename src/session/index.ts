export { SessionModule } from './session.module.js';
export { SESSION_ENTITIES, type SessionModuleExtras } from './session.module-definition.js';
export { SessionService, type CreateSessionInput, type CreatedSession } from './session.service.js';
export { SessionValidator, type ValidationOutcome } from './session-validator.js';
export { SessionGuard } from './guards/session.guard.js';
export { requestResponseOf, UnsupportedContextError, type RequestResponse } from './guards/execution-context.js';
export {
  SessionPurgeService,
  SESSION_PURGE_JOB,
  type PurgeResult,
  type PurgeRunStatus,
} from './purge/session-purge.service.js';
export { PURGE_LOCK_KEY, PurgeStore } from './purge/purge.store.js';
export { PURGE_SQL } from './purge/purge.sql.js';
export { Public, OptionalSession, CurrentSession } from './decorators/session.decorators.js';
export { RequireFreshSession } from './decorators/security.decorators.js';
export { SkipCsrf } from './csrf/csrf.decorator.js';
export { CsrfGuard, type CsrfFailure } from './csrf/csrf.guard.js';
export { FreshSessionGuard } from './guards/fresh-session.guard.js';
export { csrfTokenFor } from './csrf/csrf-token.js';
export { AggregatedAuditLog } from './security/aggregated-audit.js';
export { TokenFloodDetector } from './security/token-flood.detector.js';
export type { SessionCsrfOptions } from './csrf/csrf.options.js';
export type {
  SessionFloodOptions,
  SessionLimitOptions,
  SessionLimitPolicy,
  SessionStepUpOptions,
  SessionClientBindingOptions,
} from './security/security.options.js';
export type { ActiveSession, SessionFailureReason } from './active-session.js';
export { sessionOf } from './active-session.js';
export {
  resolveSessionOptions,
  SessionOptionsError,
  type SessionModuleOptions,
  type SessionCookieOptions,
  type ResolvedSessionOptions,
  type SessionPurgeOptions,
  type ResolvedPurgeOptions,
  type SessionCacheOptions,
  type ResolvedCacheOptions,
  DEFAULT_METRICS_PREFIX,
  type ResolvedMetricsOptions,
} from './session.options.js';
export { SessionCache, clockOffset } from './cache/session-cache.js';
export { SessionInvalidationListener } from './cache/session-invalidation.listener.js';
export { SESSION_OPTIONS, SESSION_TRANSPORT } from './session.constants.js';
export type { Duration } from './duration.js';
export { SessionStore, SessionLimitExceededError, type SessionChangeSink } from './store/session.store.js';
export { SESSION_SQL, INVALIDATION_CHANNEL, INVALIDATE_ALL } from './store/session.sql.js';
export { StoreUnavailableError, storeErrorCategory } from './store/pg-errors.js';
export { HEALTH_SQL } from './health/health.sql.js';
export {
  SessionHealth,
  DEFAULT_HEALTH_TIMEOUT_MS,
  type HealthCheckOptions,
  type SessionHealthReport,
  type SessionHealthStatus,
  type SessionPurgeHealth,
} from './health/session-health.js';
export { SESSION_CACHE_STATUS, type SessionCacheStatus } from './health/cache-status.js';
// The Terminus indicator lives in the `nest-pg-session/health` entry (terminus is an optional peer).
export {
  SessionMetrics,
  NoopSessionMetrics,
  VALIDATION_OUTCOMES,
  type ValidationMetricOutcome,
  type RotationReason,
} from './metrics/session-metrics.js';
// Not the prom-client implementation itself: its types name prom-client, which a host app may not have.
export { METRICS_SQL, ACTIVE_SESSIONS_SAMPLE_MS } from './metrics/metrics.sql.js';
export type { SessionMetricsOptions, SessionMetricsRegistry } from './metrics/metrics.options.js';
export type { SessionSummary, SessionRow } from './store/session-row.js';
export { UserSessionEntity } from './store/session.entity.js';
export { SessionAuditLogEntity } from './audit/audit-log.entity.js';
export { AUDIT_EVENTS, type AuditEvent, type RevokeReason, type AuditContext } from './audit/audit-event.js';
export type { SessionAuditRecord } from './audit/audit-record.js';
export { SessionEvents } from './audit/session-events.js';
export { SessionAuditService, type AuditPage, type AuditSummary } from './audit/session-audit.service.js';
export {
  AuditQueryDto,
  AuditSummaryDto,
  MAX_AUDIT_PAGE_SIZE,
  SUMMARY_BUCKETS,
  type AuditQueryInput,
  type AuditSummaryInput,
  type SummaryBucket,
} from './audit/audit-query.dto.js';
export { SessionAuditStore } from './audit/audit.store.js';
export { AUDIT_SQL } from './audit/audit.sql.js';
export { SessionAdminService, type AdminActor } from './admin/session-admin.service.js';
export { SessionAdminGuard } from './admin/session-admin.guard.js';
export { SessionAdminController } from './admin/session-admin.controller.js';
export type { SessionAdminOptions, SessionAdminAuthorizer } from './admin/admin.options.js';
export { SESSION_ADMIN_TAG, SESSION_BEARER_SECURITY, SESSION_COOKIE_SECURITY } from './admin/openapi.js';
export type { SessionTransport, TokenReading } from './transport/session-transport.js';
export type { HttpRequestLike, HttpResponseLike } from './transport/http.js';
export { CookieTransport } from './transport/cookie.transport.js';
export { BearerTransport } from './transport/bearer.transport.js';
export { digestBytes, generateToken, hashToken, isWellFormedToken, tokenDigest } from './token/session-token.js';
export { sessionMigrations } from '../../migrations/index.js';
