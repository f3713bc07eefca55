import type { Pool } from 'pg';
import type { AuditContext, RevokeReason } from '../audit/audit-event.js';
import { DataAtRest } from '../encryption/data-at-rest.js';
import { SecondFactorStatements, type ReserveAttemptParams } from '../second-factor/second-factor.store.js';
import type { SocketSessionState } from '../socket/socket-session.registry.js';
import { FeatureStatements } from './feature-statements.js';
import { SessionCreation } from './session-creation.js';
import {
  isSessionId,
  RETIRED_TOKENS_KEPT,
  toRetiredToken,
  toSessionLookup,
  toSessionRow,
  type RetiredToken,
  type SessionLookup,
  type SessionRow,
  type SessionSummary,
} from './session-row.js';
import { SESSION_SQL as SQL } from './session.sql.js';
import type {
  AggregatedAuditRow,
  CompleteSecondFactorParams,
  CreateSessionParams,
  FailSecondFactorParams,
  PatchResult,
  RotateParams,
  StartImpersonationParams,
  StopImpersonationParams,
} from './session-store.types.js';
import { StatementRunner, type SessionStoreOptions } from './statement-runner.js';

export { SessionLimitExceededError } from './session-creation.js';
export { isSessionId, RETIRED_TOKENS_KEPT } from './session-row.js';
export type { SessionChangeSink, SessionStoreOptions } from './statement-runner.js';

/**
 * Sessions in PostgreSQL: every statement is one of SESSION_SQL (session.sql.ts), run through
 * the StatementRunner (statement-runner.ts: bounded, classified, its audit rows and evictions
 * handed on once committed). A login's create runs in SessionCreation, the features' own
 * statements in FeatureStatements and SecondFactorStatements.
 */
export class SessionStore {
  private readonly db: StatementRunner;
  private readonly creation: SessionCreation;
  private readonly features: FeatureStatements;
  private readonly secondFactor: SecondFactorStatements;
  /** Seals data on its way in, opens it on its way out (encryption/data-at-rest.ts). */
  readonly dataAtRest: DataAtRest;

  constructor(pool: Pool, options: SessionStoreOptions = {}) {
    this.db = new StatementRunner(pool, options);
    this.dataAtRest = new DataAtRest(options.cipher, (id, details) =>
      this.revoke(id, 'data_unreadable', {}, { details }),
    );
    this.creation = new SessionCreation(this.db, this.dataAtRest);
    this.features = new FeatureStatements(this.db, this.dataAtRest);
    this.secondFactor = new SecondFactorStatements(this.db, this.dataAtRest);
  }

  async lookupByTokenHash(tokenHash: Buffer): Promise<SessionLookup | undefined> {
    const [row] = await this.db.run(SQL.lookupByTokenHash, [tokenHash]);
    return row && this.dataAtRest.openLookup(toSessionLookup(row, row.is_current_token));
  }

  /** The session a token was once issued to, when it is one of its newest RETIRED_TOKENS_KEPT retired tokens. */
  async findRetiredToken(tokenHash: Buffer): Promise<RetiredToken | undefined> {
    const [row] = await this.db.run(SQL.findRetiredToken, [tokenHash]);
    return row && toRetiredToken(row);
  }

  /** The new times when this call wrote; undefined when another request already had (at most one writes). */
  async touchIfStale(
    id: string,
    idleTimeoutMs: number,
    touchIntervalMs: number,
  ): Promise<{ lastSeenAt: Date; idleExpiresAt: Date } | undefined> {
    const [row] = await this.db.run(SQL.touchIfStale, [id, idleTimeoutMs, touchIntervalMs]);
    if (row) this.db.metrics?.touch();
    return row && { lastSeenAt: row.last_seen_at, idleExpiresAt: row.idle_expires_at };
  }

  create(p: CreateSessionParams): Promise<SessionLookup> {
    return this.creation.create(p);
  }

  /** undefined when another request rotated (or revoked) the session first. */
  async rotate(p: RotateParams): Promise<SessionLookup | undefined> {
    const [row] = await this.db.run(SQL.rotate, [
      p.id,
      p.newTokenHash,
      p.oldTokenHash,
      p.idleTimeoutMs,
      p.context.actorId ?? null,
      p.context.ip ?? null,
      p.context.userAgent ?? null,
      p.reason,
      p.reauthenticated,
      RETIRED_TOKENS_KEPT,
      this.db.notify,
    ]);
    if (!row) return undefined;
    this.db.committed(row);
    this.db.metrics?.rotation(p.reason);
    return this.dataAtRest.openOrRevoke(toSessionLookup(row, true));
  }

  /** Deletes the row and records `event`; false when it was already gone. */
  async deleteWithEvent(
    id: string,
    event: 'logout' | 'expired_idle' | 'expired_absolute',
    context: AuditContext,
    details: Record<string, unknown> = {},
  ): Promise<boolean> {
    const [row] = await this.db.run(SQL.deleteWithEvent, [
      id,
      event,
      context.actorId ?? null,
      context.ip ?? null,
      context.userAgent ?? null,
      JSON.stringify(details),
      this.db.notify,
    ]);
    this.db.committed(row);
    return row.count === 1;
  }

  /** Revokes one live session; `onlyUserId` limits it to that user's sessions. False when none matched. */
  async revoke(
    id: string,
    reason: RevokeReason,
    context: AuditContext,
    options: {
      event?: 'revoked' | 'token_reuse_detected' | 'ua_changed';
      onlyUserId?: string;
      details?: Record<string, unknown>;
    } = {},
  ): Promise<boolean> {
    if (!isSessionId(id)) return false;
    requireActorForAdmin(reason, context);
    const [row] = await this.db.run(SQL.revoke, [
      id,
      options.event ?? 'revoked',
      reason,
      context.actorId ?? null,
      context.ip ?? null,
      context.userAgent ?? null,
      options.onlyUserId ?? null,
      options.details ? JSON.stringify(options.details) : null,
      this.db.notify,
    ]);
    this.db.committed(row);
    return row.count === 1;
  }

  async revokeAllForUser(
    userId: string,
    reason: RevokeReason,
    context: AuditContext,
    exceptId?: string,
  ): Promise<number> {
    if (exceptId !== undefined && !isSessionId(exceptId)) throw new TypeError('revokeAll: except must be a session id');
    requireActorForAdmin(reason, context);
    const [row] = await this.db.run(SQL.revokeAllForUser, [
      userId,
      reason,
      exceptId ?? null,
      context.actorId ?? null,
      context.ip ?? null,
      context.userAgent ?? null,
      this.db.notify,
    ]);
    this.db.committed(row);
    return row.count;
  }

  // Impersonation, sockets, the privacy export: feature-statements.ts; the second factor: second-factor.store.ts.
  startImpersonation(p: StartImpersonationParams): Promise<SessionLookup | undefined> {
    return this.features.startImpersonation(p);
  }

  stopImpersonation(p: StopImpersonationParams): Promise<{ ended: boolean; returnedTo?: SessionLookup }> {
    return this.features.stopImpersonation(p);
  }

  completeSecondFactor(p: CompleteSecondFactorParams): Promise<SessionLookup | undefined> {
    return this.secondFactor.complete(p);
  }

  reserveSecondFactorAttempt(
    p: ReserveAttemptParams,
  ): Promise<{ attempts?: number; locked: boolean; retryAfterMs: number }> {
    return this.secondFactor.reserveAttempt(p);
  }

  failSecondFactor(p: FailSecondFactorParams): Promise<{ attempts: number; revoked: boolean } | undefined> {
    return this.secondFactor.fail(p);
  }

  endPending(id: string, tokenHash: Buffer, reason: string, context: AuditContext): Promise<boolean> {
    return this.secondFactor.endPending(id, tokenHash, reason, context);
  }

  userSecondFactorLock(
    userId: string,
    limit: number,
    windowMs: number,
  ): Promise<{ locked: boolean; retryAfterMs: number }> {
    return this.secondFactor.userLock(userId, limit, windowMs);
  }

  socketSessionStates(ids: string[]): Promise<SocketSessionState[]> {
    return this.features.socketSessionStates(ids);
  }

  sessionsOfUser(userId: string, limit: number): Promise<Array<SessionRow & { revokeReason: string | null }>> {
    return this.features.sessionsOfUser(userId, limit);
  }

  async listForUser(userId: string, currentId?: string): Promise<SessionSummary[]> {
    const rows = await this.db.run(SQL.listForUser, [userId]);
    return rows.map((r) => ({
      id: r.id,
      createdAt: r.created_at,
      lastSeenAt: r.last_seen_at,
      expiresAt: r.expires_at,
      ip: r.ip,
      userAgent: r.user_agent,
      lifetime: r.lifetime,
      current: r.id === currentId,
      ...(r.impersonator_id === null ? {} : { impersonatedBy: r.impersonator_id }),
      ...(r.second_factor_pending ? { secondFactorPending: true as const } : {}),
    }));
  }

  async findLiveById(id: string): Promise<SessionRow | undefined> {
    if (!isSessionId(id)) return undefined;
    const [row] = await this.db.run(SQL.findLiveById, [id]);
    return row && this.dataAtRest.openOrRevoke(toSessionRow(row));
  }

  /** `patch` must already be serialisable JSON that Postgres accepts (the service checks). */
  async patchData(id: string, patch: Record<string, unknown>, maxBytes: number): Promise<PatchResult> {
    const [row] = await this.db.run(SQL.patchData, [id, this.dataAtRest.sealed(id, patch), maxBytes, this.db.notify]);
    if (row) {
      this.db.committed(row);
      const merged = await this.dataAtRest.openOrRevoke({ id, data: row.data as Record<string, unknown> });
      return merged ? { ok: true, data: merged.data } : { ok: false, reason: 'not_found' };
    }
    const live = await this.findLiveById(id);
    return { ok: false, reason: live ? 'too_large' : 'not_found' };
  }

  /** Stores the request's address and user agent when they differ from the row's, auditing each change once. */
  async recordClientChange(
    id: string,
    ip: string | null,
    userAgent: string | null,
    /** The request's own address for the audit rows, when `ip` is the row's kept because the request's is unknown. */
    requestIp: string | null = ip,
  ): Promise<{ ipChanged: boolean; userAgentChanged: boolean }> {
    const [row] = await this.db.run(SQL.recordClientChange, [id, ip, userAgent, requestIp, this.db.notify]);
    this.db.committed(row);
    return {
      ipChanged: row !== undefined && row.old_ip !== ip,
      userAgentChanged: row !== undefined && row.old_user_agent !== userAgent,
    };
  }

  async insertAggregatedEvents(rows: AggregatedAuditRow[]): Promise<void> {
    if (rows.length === 0) return;
    const written = await this.db.run(SQL.insertAggregatedEvents, [JSON.stringify(rows)]);
    this.db.committed({ audit_rows: written });
  }
}

/** An admin revocation must say which admin: the audit row is the only record of who did it. */
function requireActorForAdmin(reason: RevokeReason, context: AuditContext): void {
  if (reason === 'admin' && !context.actorId)
    throw new TypeError("revoking with reason 'admin' needs the admin's id as actorId");
}
