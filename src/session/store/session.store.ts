import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { randomBytes } from 'node:crypto';
import type { AuditContext, RevokeReason } from '../audit/audit-event.js';
import { toAuditRecord } from '../audit/audit-record.js';
import type { AuditEventSink } from '../audit/session-events.js';
import { DataAtRest } from '../encryption/data-at-rest.js';
import { SessionDataUnreadableError } from '../encryption/session-data-cipher.js';
import type { SessionDataCipher } from '../encryption/session-data-cipher.js';
import type { SessionMetrics } from '../metrics/session-metrics.js';
import { DEFAULTS } from '../session.options.js';
import { queryWithin } from './bounded-wait.js';
import { asStoreError, StoreErrorLog, StoreUnavailableError } from './pg-errors.js';
import {
  toRetiredToken,
  toSessionLookup,
  toSessionRow,
  type RetiredToken,
  type SessionLookup,
  type SessionRow,
  type SessionSummary,
} from './session-row.js';
import { SESSION_SQL as SQL } from './session.sql.js';
import { IMPERSONATION_SQL } from '../impersonation/impersonation.sql.js';
import { SECOND_FACTOR_SQL } from '../second-factor/second-factor.sql.js';
import { PRIVACY_SQL } from '../privacy/privacy.sql.js';
import { SOCKET_SQL } from '../socket/socket.sql.js';
import type { SocketSessionState } from '../socket/socket-session.registry.js';
import type {
  AggregatedAuditRow,
  CompleteSecondFactorParams,
  CreateSessionParams,
  PatchResult,
  RotateParams,
  StartImpersonationParams,
  StopImpersonationParams,
} from './session-store.types.js';
import type { Statement } from './statement.js';

/**
 * Told which sessions a committed statement changed (the ids it also sent by NOTIFY), so
 * this instance's cache drops them at once rather than when its own notice comes back.
 */
export interface SessionChangeSink {
  evictSession(id: string): void;
  evictAll(): void;
}

export interface SessionStoreOptions {
  /** Bound on each statement, the wait for a connection included. Default 5 s. */
  queryTimeoutMs?: number;
  /** Receives each audit row after its statement committed (SessionEvents). */
  events?: AuditEventSink;
  /** The local cache, if any. */
  changes?: SessionChangeSink;
  /** Only when metrics are enabled: without it, no statement reads the clock. */
  metrics?: SessionMetrics;
  /** Announce changes on INVALIDATION_CHANNEL (`cache.notify`). Default true. */
  notify?: boolean;
  /** Name the hot-path statements (server-side prepared); false behind a transaction pooler. Default: the option's. */
  preparedStatements?: boolean;
  /** Encrypts each value of `data` at rest (the `encryption` option); absent: data is stored as given. */
  cipher?: SessionDataCipher;
}

/**
 * Retired token hashes kept per session, newest first; an older one is forgotten, and
 * presenting it then answers `invalid` like any unknown token. 64 covers every periodic
 * rotation of a session at the defaults (absoluteTimeout 12h / rotationInterval 15m = 48)
 * plus 16 manual or step-up ones, at about 100 bytes each (hash, index entries, row).
 */
export const RETIRED_TOKENS_KEPT = 64;

/** A login refused by the per-user session limit (policy 'reject'). */
export class SessionLimitExceededError extends Error {
  override name = 'SessionLimitExceededError';
  constructor(readonly limit: number) {
    super(`session limit of ${limit} reached`);
  }
}

/**
 * Sessions in PostgreSQL: every statement is one of SESSION_SQL (session.sql.ts), run by name
 * through run(), bounded in time, its failure classified (pg-errors.ts). A statement that
 * changes sessions returns its audit rows and the ids it announced; once it has committed,
 * committed() hands them to the event sink and the local cache.
 */
export class SessionStore {
  private readonly errorLog = new StoreErrorLog();
  private readonly queryTimeoutMs: number;
  private readonly events?: AuditEventSink;
  private readonly changes?: SessionChangeSink;
  private readonly metrics?: SessionMetrics;
  private readonly notify: boolean;
  private readonly preparedStatements: boolean;
  /** Seals data on its way in, opens it on its way out (encryption/data-at-rest.ts). */
  readonly dataAtRest: DataAtRest;

  constructor(
    private readonly pool: Pool,
    options: SessionStoreOptions = {},
  ) {
    this.queryTimeoutMs = options.queryTimeoutMs ?? 5_000;
    this.events = options.events;
    this.changes = options.changes;
    this.metrics = options.metrics;
    this.notify = options.notify ?? true;
    this.preparedStatements = options.preparedStatements ?? DEFAULTS.preparedStatements;
    this.dataAtRest = new DataAtRest(options.cipher, (id, details) =>
      this.revoke(id, 'data_unreadable', {}, { details }),
    );
  }

  async lookupByTokenHash(tokenHash: Buffer): Promise<SessionLookup | undefined> {
    const [row] = await this.run(SQL.lookupByTokenHash, [tokenHash]);
    return row && this.dataAtRest.openLookup(toSessionLookup(row, row.is_current_token));
  }

  /** The session a token was once issued to, when it is one of its newest RETIRED_TOKENS_KEPT retired tokens. */
  async findRetiredToken(tokenHash: Buffer): Promise<RetiredToken | undefined> {
    const [row] = await this.run(SQL.findRetiredToken, [tokenHash]);
    return row && toRetiredToken(row);
  }

  /** The new times when this call wrote; undefined when another request already had (at most one writes). */
  async touchIfStale(
    id: string,
    idleTimeoutMs: number,
    touchIntervalMs: number,
  ): Promise<{ lastSeenAt: Date; idleExpiresAt: Date } | undefined> {
    const [row] = await this.run(SQL.touchIfStale, [id, idleTimeoutMs, touchIntervalMs]);
    if (row) this.metrics?.touch();
    return row && { lastSeenAt: row.last_seen_at, idleExpiresAt: row.idle_expires_at };
  }

  async create(p: CreateSessionParams): Promise<SessionLookup> {
    const evictBeyond = p.limit?.policy === 'evict-oldest' ? p.limit.maxSessionsPerUser : null;
    // The id is chosen here, so the data can be sealed to it before the insert.
    const id = randomUUID();
    let data = p.data;
    const values = [
      p.replacesTokenHash,
      p.tokenHash,
      p.userId,
      this.dataAtRest.sealed(id, data, p.maxDataBytes),
      p.idleTimeoutMs,
      p.absoluteTimeoutMs,
      p.ip,
      p.userAgent,
      evictBeyond,
      p.lifetime ?? (p.userId === null ? 'guest' : 'default'),
      id,
      p.secondFactorPending === true,
      p.maxPendingPerUser ?? 1,
      this.notify,
    ];
    const limit = p.userId === null ? undefined : p.limit;
    const carryGuest = p.replacesTokenHash === null ? undefined : p.carryGuest;
    const [row] =
      limit === undefined && carryGuest === undefined
        ? await this.run(SQL.create, values)
        : await this.transaction(async (run) => {
            if (limit) {
              // Serialise this user's logins, so counting and inserting see each other (READ COMMITTED:
              // every later statement of the transaction takes its snapshot after the lock is granted).
              await run(SQL.lockUserSessions, [p.userId]);
              if (limit.policy === 'reject') {
                const [live] = await run(SQL.countLiveForUser, [p.userId, p.replacesTokenHash]);
                if (live.count >= limit.maxSessionsPerUser)
                  throw new SessionLimitExceededError(limit.maxSessionsPerUser);
              }
            }
            if (carryGuest) {
              const [guest] = await run(SQL.lockGuestByToken, [p.replacesTokenHash]);
              if (guest) {
                data = carryGuest(this.dataAtRest.openCarried(guest.id, guest.data));
                values[3] = this.dataAtRest.sealed(id, data, p.maxDataBytes);
              }
            }
            return run(SQL.create, values);
          });
    this.committed(row);
    return this.dataAtRest.withPlain(toSessionLookup(row, true), data);
  }

  /** undefined when another request rotated (or revoked) the session first. */
  async rotate(p: RotateParams): Promise<SessionLookup | undefined> {
    const [row] = await this.run(SQL.rotate, [
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
      this.notify,
    ]);
    if (!row) return undefined;
    this.committed(row);
    this.metrics?.rotation(p.reason);
    return this.dataAtRest.openOrRevoke(toSessionLookup(row, true));
  }

  /** Deletes the row and records `event`; false when it was already gone. */
  async deleteWithEvent(
    id: string,
    event: 'logout' | 'expired_idle' | 'expired_absolute',
    context: AuditContext,
    details: Record<string, unknown> = {},
  ): Promise<boolean> {
    const [row] = await this.run(SQL.deleteWithEvent, [
      id,
      event,
      context.actorId ?? null,
      context.ip ?? null,
      context.userAgent ?? null,
      JSON.stringify(details),
      this.notify,
    ]);
    this.committed(row);
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
    const [row] = await this.run(SQL.revoke, [
      id,
      options.event ?? 'revoked',
      reason,
      context.actorId ?? null,
      context.ip ?? null,
      context.userAgent ?? null,
      options.onlyUserId ?? null,
      options.details ? JSON.stringify(options.details) : null,
      this.notify,
    ]);
    this.committed(row);
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
    const [row] = await this.run(SQL.revokeAllForUser, [
      userId,
      reason,
      exceptId ?? null,
      context.actorId ?? null,
      context.ip ?? null,
      context.userAgent ?? null,
      this.notify,
    ]);
    this.committed(row);
    return row.count;
  }

  /**
   * The impersonation session; undefined when the admin's session is not live, or is itself an
   * impersonation. The admin's own token is retired in the same statement.
   */
  async startImpersonation(p: StartImpersonationParams): Promise<SessionLookup | undefined> {
    const [row] = await this.run(IMPERSONATION_SQL.startImpersonation, [
      p.impersonatorSessionId,
      p.tokenHash,
      p.userId,
      p.idleTimeoutMs,
      p.maxDurationMs,
      p.context.ip ?? null,
      p.context.userAgent ?? null,
      p.reason,
      randomBytes(32), // the admin's session's hash while impersonating: the hash of no token anyone holds
      RETIRED_TOKENS_KEPT,
      this.notify,
    ]);
    if (!row) return undefined;
    this.committed(row);
    return this.dataAtRest.openOrRevoke(toSessionLookup(row, true));
  }

  /**
   * Ends impersonation session `id` and gives the admin's own session the new token, in one
   * statement. `ended`: it was a live impersonation session; `returnedTo`: the admin's session,
   * undefined when that is no longer live.
   */
  async stopImpersonation(p: StopImpersonationParams): Promise<{ ended: boolean; returnedTo?: SessionLookup }> {
    if (!isSessionId(p.id)) return { ended: false };
    const [row] = await this.run(IMPERSONATION_SQL.stopImpersonation, [
      p.id,
      p.newTokenHash,
      p.context.ip ?? null,
      p.context.userAgent ?? null,
      p.idleTimeoutMs,
      RETIRED_TOKENS_KEPT,
      this.notify,
    ]);
    this.committed(row);
    if (row.id !== null) this.metrics?.rotation('manual');
    const returnedTo = row.id === null ? undefined : await this.dataAtRest.openOrRevoke(toSessionLookup(row, true));
    return { ended: row.ended, returnedTo };
  }

  /** The full session under its new token; undefined when `p.id` with `p.tokenHash` is no live pending session. */
  async completeSecondFactor(p: CompleteSecondFactorParams): Promise<SessionLookup | undefined> {
    const limit = p.limit;
    const values = [
      p.id,
      p.tokenHash,
      p.newTokenHash,
      p.idleTimeoutMs,
      p.absoluteTimeoutMs,
      p.context.ip ?? null,
      p.context.userAgent ?? null,
      RETIRED_TOKENS_KEPT,
      p.maxAttempts,
      limit?.policy === 'evict-oldest' ? limit.maxSessionsPerUser : null,
      this.notify,
    ];
    if (!limit) return this.completed((await this.run(SECOND_FACTOR_SQL.completeSecondFactor, values))[0]);
    // As a login: the user's lock serialises counting/evicting with their logins and completions.
    const outcome = await this.transaction(async (run) => {
      await run(SQL.lockUserSessions, [p.userId]);
      if (limit.policy === 'reject') {
        const [live] = await run(SQL.countLiveForUser, [p.userId, null]);
        if (live.count >= limit.maxSessionsPerUser) {
          const ctx = p.context;
          const [ended] = await run(SECOND_FACTOR_SQL.endPending, [
            p.id,
            p.tokenHash,
            'limit_rejected',
            ctx.ip ?? null,
            ctx.userAgent ?? null,
            this.notify,
          ]);
          return { ended };
        }
      }
      return { row: (await run(SECOND_FACTOR_SQL.completeSecondFactor, values))[0] };
    });
    if ('ended' in outcome) {
      if (outcome.ended) this.committed(outcome.ended);
      // Refused as a login would be; the pending session ended with it (log in again later).
      if (outcome.ended?.count === 1) throw new SessionLimitExceededError(limit.maxSessionsPerUser);
      return undefined;
    }
    return this.completed(outcome.row);
  }

  private async completed(row: QueryResultRow | undefined): Promise<SessionLookup | undefined> {
    if (!row) return undefined;
    this.committed(row);
    return this.dataAtRest.openOrRevoke(toSessionLookup(row, true));
  }

  /** Ends a live pending session (reason `reason`, audited); false when it was no live pending one. */
  async endPending(id: string, tokenHash: Buffer, reason: string, context: AuditContext): Promise<boolean> {
    const [row] = await this.run(SECOND_FACTOR_SQL.endPending, [
      id,
      tokenHash,
      reason,
      context.ip ?? null,
      context.userAgent ?? null,
      this.notify,
    ]);
    this.committed(row);
    return row.count === 1;
  }

  /** Whether the user's second-factor failures fill `limit` within `windowMs` (see reserveSecondFactorAttempt). */
  async userSecondFactorLock(
    userId: string,
    limit: number,
    windowMs: number,
  ): Promise<{ locked: boolean; retryAfterMs: number }> {
    const [row] = await this.run(SECOND_FACTOR_SQL.userSecondFactorLock, [userId, limit, windowMs]);
    return { locked: row.locked, retryAfterMs: Number(row.retry_after_ms) };
  }

  /**
   * Takes one attempt of a live pending session under the user's lock (see the statement):
   * `attempts` undefined when none is left or it is not live; `locked` with `retryAfterMs` when
   * the user's failures fill `userFailureLimit` within the window.
   */
  async reserveSecondFactorAttempt(p: {
    id: string;
    tokenHash: Buffer;
    userId: string;
    maxAttempts: number;
    userFailureLimit: number;
    userFailureWindowMs: number;
  }): Promise<{ attempts?: number; locked: boolean; retryAfterMs: number }> {
    const [row] = await this.transaction(async (run) => {
      await run(SQL.lockUserSessions, [p.userId]);
      return run(SECOND_FACTOR_SQL.reserveSecondFactorAttempt, [
        p.id,
        p.tokenHash,
        p.maxAttempts,
        p.userId,
        p.userFailureLimit,
        p.userFailureWindowMs,
      ]);
    });
    return { attempts: row.attempts ?? undefined, locked: row.locked, retryAfterMs: Number(row.retry_after_ms) };
  }

  /** Records a failed attempt (`counted`: not reserved before); undefined when it was no live pending session. */
  async failSecondFactor(
    p: Omit<CompleteSecondFactorParams, 'newTokenHash' | 'idleTimeoutMs' | 'absoluteTimeoutMs' | 'userId' | 'limit'> & {
      counted: boolean;
    },
  ): Promise<{ attempts: number; revoked: boolean } | undefined> {
    const [row] = await this.run(SECOND_FACTOR_SQL.failSecondFactor, [
      p.id,
      p.tokenHash,
      p.counted ? 1 : 0,
      p.maxAttempts,
      p.context.ip ?? null,
      p.context.userAgent ?? null,
      this.notify,
    ]);
    this.committed(row);
    return row.attempts === null ? undefined : { attempts: row.attempts, revoked: row.revoked };
  }

  async listForUser(userId: string, currentId?: string): Promise<SessionSummary[]> {
    const rows = await this.run(SQL.listForUser, [userId]);
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

  /** The sessions of open sockets, in one read (socket/socket-session.registry.ts). Deleted ones are absent. */
  async socketSessionStates(ids: string[]): Promise<SocketSessionState[]> {
    const rows = await this.run(SOCKET_SQL.socketSessionStates, [ids]);
    return rows.map((r) => ({
      id: r.id,
      revokedAt: r.revoked_at,
      revokeReason: r.revoke_reason,
      lastSeenAt: r.last_seen_at,
      idleExpiresAt: r.idle_expires_at,
      absoluteExpiresAt: r.absolute_expires_at,
      dbNow: r.db_now,
    }));
  }

  async findLiveById(id: string): Promise<SessionRow | undefined> {
    if (!isSessionId(id)) return undefined;
    const [row] = await this.run(SQL.findLiveById, [id]);
    return row && this.dataAtRest.openOrRevoke(toSessionRow(row));
  }

  /** Every session row holding the user's personal data (privacy.sql.ts), newest first, for the export. Never tokens. */
  async sessionsOfUser(userId: string, limit: number): Promise<Array<SessionRow & { revokeReason: string | null }>> {
    const rows = await this.run(PRIVACY_SQL.sessionsOfUser, [userId, limit]);
    return rows.map((row) => {
      const session = { ...toSessionRow(row), revokeReason: row.revoke_reason ?? null };
      try {
        return this.dataAtRest.open(session);
      } catch (error) {
        // An export has no side effects: data that does not open (docs/encryption.md) is left out, not revoked.
        if (error instanceof SessionDataUnreadableError) return { ...session, data: {} };
        throw error;
      }
    });
  }

  /** `patch` must already be serialisable JSON that Postgres accepts (the service checks). */
  async patchData(id: string, patch: Record<string, unknown>, maxBytes: number): Promise<PatchResult> {
    const [row] = await this.run(SQL.patchData, [id, this.dataAtRest.sealed(id, patch), maxBytes, this.notify]);
    if (row) {
      this.committed(row);
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
    const [row] = await this.run(SQL.recordClientChange, [id, ip, userAgent, requestIp, this.notify]);
    this.committed(row);
    return {
      ipChanged: row !== undefined && row.old_ip !== ip,
      userAgentChanged: row !== undefined && row.old_user_agent !== userAgent,
    };
  }

  async insertAggregatedEvents(rows: AggregatedAuditRow[]): Promise<void> {
    if (rows.length === 0) return;
    const written = await this.run(SQL.insertAggregatedEvents, [JSON.stringify(rows)]);
    this.committed({ audit_rows: written });
  }

  /**
   * After a statement committed: hands the audit rows it wrote to the event sink, then evicts
   * the sessions it changed (the ids it announced) from the local cache.
   */
  private committed(row: { audit_rows?: unknown; notified_ids?: unknown } | undefined): void {
    if (row === undefined) return;
    if (this.events && Array.isArray(row.audit_rows))
      for (const record of row.audit_rows) this.events.publish(toAuditRecord(record));
    if (this.changes && Array.isArray(row.notified_ids))
      for (const id of row.notified_ids) this.changes.evictSession(String(id));
  }

  /** One statement, bounded as a whole (queryWithin), timed for the metrics, its failure logged and classified. */
  private run(
    statement: Statement,
    values?: unknown[],
    client: Pool | PoolClient = this.pool,
  ): Promise<QueryResultRow[]> {
    const started = this.metrics && performance.now();
    return new Promise((resolve, reject) =>
      queryWithin(
        client,
        statement,
        values,
        this.queryTimeoutMs,
        () => new StoreUnavailableError(`no answer within ${this.queryTimeoutMs} ms`),
        (error, rows) => {
          if (started !== undefined) this.metrics!.statement(statement.name, started);
          if (rows) return resolve(rows);
          this.errorLog.report(statement.name, error);
          reject(asStoreError(error));
        },
        this.preparedStatements,
      ),
    );
  }

  /** Runs `work` in one transaction on one connection; any error rolls it back. */
  private async transaction<T>(
    work: (run: (statement: Statement, values: unknown[]) => Promise<QueryResultRow[]>) => Promise<T>,
  ): Promise<T> {
    const client = await this.pool.connect().catch((error: unknown) => {
      this.errorLog.report(SQL.begin.name, error);
      throw asStoreError(error);
    });
    let broken = false;
    try {
      await this.run(SQL.begin, undefined, client);
      const result = await work((statement, values) => this.run(statement, values, client));
      await this.run(SQL.commit, undefined, client);
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Session ids come from URLs too: anything that is not a uuid simply matches no session. */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** An admin revocation must say which admin: the audit row is the only record of who did it. */
function requireActorForAdmin(reason: RevokeReason, context: AuditContext): void {
  if (reason === 'admin' && !context.actorId)
    throw new TypeError("revoking with reason 'admin' needs the admin's id as actorId");
}
