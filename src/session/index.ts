// The public API: what a host app imports. Internals (store, cache, SQL, tokens) stay unexported;
// etc/nest-pg-session.api.md records this surface, so a change to it shows in review.

// The module and its options
export { SessionModule } from './session.module.js';
export { SESSION_ENTITIES, type SessionModuleExtras } from './session.module-definition.js';
export {
  SessionOptionsError,
  type SessionModuleOptions,
  type SessionCookieOptions,
  type SessionPurgeOptions,
  type SessionCacheOptions,
} from './session.options.js';
export type { SessionLifetimeOptions } from './lifetime/lifetime.options.js';
export type { SessionGuestOptions } from './guest/guest.options.js';
export type { SessionCsrfOptions } from './csrf/csrf.options.js';
export type {
  SessionFloodOptions,
  SessionLimitOptions,
  SessionLimitPolicy,
  SessionStepUpOptions,
  SessionClientBindingOptions,
} from './security/security.options.js';
export type { SessionAdminOptions, SessionAdminAuthorizer } from './admin/admin.options.js';
export type { SessionMetricsOptions, SessionMetricsRegistry } from './metrics/metrics.options.js';
export type { Duration } from './duration.js';
export type { SessionSocketOptions } from './socket/socket.options.js';
export { SessionSockets } from './socket/session-sockets.js';
export { SOCKET_CLOSE_CODES, type SocketCloseReason } from './socket/socket-close.js';
export { SESSION_ENDED_EVENT } from './socket/socket-client.js';
export { sessionMigrations } from '../../migrations/index.js';
export { UserSessionEntity } from './store/session.entity.js';
export { SessionAuditLogEntity } from './audit/audit-log.entity.js';

// Sessions in handlers
export { SessionService, type CreateSessionInput, type CreatedSession } from './session.service.js';
export type { ImpersonateInput, IssuedSession } from './impersonation/session-impersonation.js';
export type { SessionImpersonationOptions } from './impersonation/impersonation.options.js';
export type { SessionPrivacyOptions } from './privacy/privacy.options.js';
export type { SessionEncryptionOptions, SessionEncryptionKey } from './encryption/encryption.options.js';
export type { SecondFactorCheck } from './second-factor/session-second-factor.js';
export type { SessionSecondFactorOptions } from './second-factor/second-factor.options.js';
export { sessionOf, type ActiveSession, type ActiveGuestSession, type SessionFailureReason } from './active-session.js';
export type { SessionData, DefaultSessionData, SessionDataView, SessionDataPatch } from './session-data.types.js';
export type { SessionSummary } from './store/session-row.js';
export type { HttpRequestLike, HttpResponseLike } from './transport/http.js';
export { SessionLimitExceededError } from './store/session.store.js';
export { StoreUnavailableError } from './store/pg-errors.js';

// Route decorators and the guards to extend
export { Public, OptionalSession, GuestSession, CurrentSession } from './decorators/session.decorators.js';
export { RequireFreshSession, RealUserOnly } from './decorators/security.decorators.js';
export { SecondFactorRoute } from './second-factor/second-factor.decorator.js';
export { RealUserGuard } from './guards/real-user.guard.js';
export { SkipCsrf } from './csrf/csrf.decorator.js';
export { SessionGuard } from './guards/session.guard.js';
export { CsrfGuard, type CsrfFailure } from './csrf/csrf.guard.js';
export { UnsupportedContextError } from './guards/execution-context.js';

// Audit log and admin
export { AUDIT_EVENTS, type AuditEvent, type RevokeReason, type AuditContext } from './audit/audit-event.js';
export type { SessionAuditRecord } from './audit/audit-record.js';
export { SessionEvents } from './audit/session-events.js';
export { SessionAuditService, type AuditPage, type AuditSummary } from './audit/session-audit.service.js';
export {
  AuditQueryDto,
  AuditSummaryDto,
  type AuditQueryInput,
  type AuditSummaryInput,
  type SummaryBucket,
} from './audit/audit-query.dto.js';
export { SessionAdminService, type AdminActor } from './admin/session-admin.service.js';
export { SessionAdminGuard } from './admin/session-admin.guard.js';
export {
  SessionPrivacyService,
  MAX_EXPORTED_SESSIONS,
  MAX_EXPORTED_AUDIT_EVENTS,
  type EraseUserOptions,
  type ErasureResult,
  type ExportedSession,
  type PersonalDataExport,
} from './privacy/session-privacy.service.js';
export type { ErasureMode, ErasureCounts } from './privacy/privacy.store.js';
export { SESSION_ADMIN_TAG, SESSION_BEARER_SECURITY, SESSION_COOKIE_SECURITY } from './admin/openapi.js';

// Operations: purge, health, metrics (the Terminus indicator is in `nest-pg-session/health`)
export { SessionPurgeService, type PurgeResult, type PurgeRunStatus } from './purge/session-purge.service.js';
export {
  SessionHealth,
  type HealthCheckOptions,
  type SessionHealthReport,
  type SessionHealthStatus,
  type SessionPurgeHealth,
} from './health/session-health.js';
export { SessionMetrics, type ValidationMetricOutcome, type RotationReason } from './metrics/session-metrics.js';
