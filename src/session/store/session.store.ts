import { ServiceUnavailableException } from '@nestjs/common';
import type { Pool, PoolClient, QueryConfig, QueryResultRow } from 'pg';
import type { AuditContext, RevokeReason } from '../audit/audit-event.js';
import { AUDIT_RECORD_COLUMNS, toAuditRecord } from '../audit/audit-record.js';
import type { AuditEventSink } from '../audit/session-events.js';
import type { SessionMetrics } from '../metrics/session-metrics.js';
import { queryWithin } from './bounded-wait.js';
import type { SessionLookup, SessionRow, SessionSummary } from './session-row.js';
import { StoreErrorLog } from './store-error-log.js';

/**
 * Every statement the module sends about sessions, in one place (as Spring Session's
 * JdbcIndexedSessionRepository does), so a reviewer can check each against the indexes in
 * the migration. Times are always computed by the database (`now()`), so every app
 * instance agrees on expiry. Lifecycle changes write their audit row in the same statement
 * (data-modifying CTEs): no change without its event, no event without its change. Each
 * statement returns the audit rows it wrote (`audit_rows`), which are emitted to
 * SessionEvents once the statement has committed.
 */
const ROW = `id, user_id, data, created_at, last_seen_at, authenticated_at, idle_expires_at,
  absolute_expires_at, rotated_at, revoked_at, ip, user_agent, version`;
const MS = `* interval '1 millisecond'`;
const AUDIT_COLUMNS = `session_audit_log (event, session_id, user_id, actor_id, ip, user_agent, details)`;
const AUDITED = `RETURNING ${AUDIT_RECORD_COLUMNS}`;
/** The audit rows written by the named CTEs, as one json array column. */
const auditRowsOf = (...ctes: string[]) =>
  `(SELECT coalesce(json_agg(a ORDER BY a.id::bigint), '[]'::json) FROM (${ctes.map((c) => `SELECT * FROM ${c}`).join(' UNION ALL ')}) a) AS audit_rows`;
/** A session that still counts: not revoked, neither deadline passed (on the database clock). */
export const LIVE = `revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()`;

/**
 * Channel on which every change to a session that a cached copy must not survive is
 * announced (payload: the session id), for the in-process caches of all instances
 * (cache/session-invalidation.listener.ts). pg_notify runs in the statement that makes the
 * change, so the notice is delivered exactly when the change commits, and never without it.
 * Sent when `cache.notify` is on (by default: when this instance caches; a fleet where only
 * some instances cache needs it on everywhere). Never per request, and off without a cache,
 * because Postgres serialises the commits of all notifying transactions on one global queue
 * lock: rotations and data patches of every session would queue behind each other for nothing.
 */
export const INVALIDATION_CHANNEL = 'nest_pg_session';
/** Payload meaning "drop every cached session" (the purge: thousands of ids per batch, all of them expired anyway). */
export const INVALIDATE_ALL = '*';
/**
 * Sends one notice per session id in the named CTEs and returns those ids as a json array
 * (`notified_ids`), so the store also evicts them locally at once. A scalar subquery in the
 * final SELECT: a plain SELECT inside WITH runs only if the final query reads it, and the
 * volatile pg_notify column is never pruned from the subquery.
 */
const notifying = (...ctes: string[]) =>
  `(SELECT coalesce(json_agg(n.id), '[]'::json) FROM (SELECT id, pg_notify('${INVALIDATION_CHANNEL}', id::text)
    FROM (${ctes.map((c) => `SELECT id FROM ${c}`).join(' UNION ')}) ids) n) AS notified_ids`;
const quiet = () => `'[]'::json AS notified_ids`;

/** The session statements, with or without the NOTIFY of changes (see INVALIDATION_CHANNEL). */
function sessionSql(notify: boolean) {
  const notifyOf = notify ? notifying : quiet;
  return {
    /** Hot path: one indexed read by the current or previous token hash. */
    lookupByTokenHash: `
    SELECT ${ROW}, token_hash = $1 AS is_current_token, now() AS db_now
    FROM user_sessions
    WHERE token_hash = $1 OR previous_token_hash = $1
    LIMIT 1`,

    /** Conditional: of N concurrent requests past the touch interval, exactly one writes. */
    touchIfStale: `
    UPDATE user_sessions
    SET last_seen_at = now(), idle_expires_at = now() + $2 ${MS}
    WHERE id = $1 AND ${LIVE} AND last_seen_at <= now() - $3 ${MS}
    RETURNING last_seen_at, idle_expires_at`,

    /**
     * New session; a token the request already carried is revoked in the same statement
     * (fixation). With $9 (a per-user limit, evict-oldest), the user's oldest live sessions
     * beyond the newest $9 - 1 are revoked too; the caller holds the user's advisory lock.
     */
    create: `
    WITH replaced AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'fixation', data = '{}'::jsonb
      WHERE $1::bytea IS NOT NULL AND (token_hash = $1 OR previous_token_hash = $1) AND revoked_at IS NULL
      RETURNING id, user_id
    ), replaced_audit AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT 'revoked', id, user_id, $3, $7, $8, '{"reason":"fixation"}'::jsonb FROM replaced
      ${AUDITED}
    ), evicted AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = 'limit_evicted', data = '{}'::jsonb
      WHERE id IN (
        SELECT id FROM user_sessions
        WHERE $9::int IS NOT NULL AND user_id = $3 AND ${LIVE}
          AND ($1::bytea IS NULL OR (token_hash <> $1 AND previous_token_hash IS DISTINCT FROM $1))
        ORDER BY created_at DESC, id DESC
        OFFSET greatest($9::int - 1, 0))
      RETURNING id, user_id
    ), evicted_audit AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT 'revoked', id, user_id, $3, $7, $8, '{"reason":"limit_evicted"}'::jsonb FROM evicted
      ${AUDITED}
    ), created AS (
      INSERT INTO user_sessions (token_hash, user_id, data, idle_expires_at, absolute_expires_at, ip, user_agent)
      VALUES ($2, $3, $4::jsonb, now() + $5 ${MS}, now() + $6 ${MS}, $7, $8)
      RETURNING ${ROW}, now() AS db_now
    ), created_audit AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT 'created', id, user_id, user_id, ip, user_agent, '{}'::jsonb FROM created
      ${AUDITED}
    )
    SELECT *, ${auditRowsOf('replaced_audit', 'created_audit')}, ${notifyOf('replaced', 'evicted')} FROM created`,

    /**
     * Swap in a new token. After a periodic rotation the old one stays in previous_token_hash
     * for the grace window (in-flight requests); after a manual one or a step-up it is dropped
     * at once, so whoever else held it cannot ride the newly elevated session.
     */
    rotate: `
    WITH rotated AS (
      UPDATE user_sessions
      SET previous_token_hash = CASE WHEN $8::text = 'interval' THEN token_hash END, token_hash = $2, rotated_at = now(), last_seen_at = now(),
          idle_expires_at = now() + $4 ${MS}, version = version + 1,
          authenticated_at = CASE WHEN $9 THEN now() ELSE authenticated_at END
      WHERE id = $1 AND token_hash = $3 AND ${LIVE}
      RETURNING ${ROW}, now() AS db_now
    ), audit AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT 'rotated', id, user_id, $5, $6, $7, jsonb_build_object('reason', $8::text, 'version', version) FROM rotated
      ${AUDITED}
    )
    SELECT *, ${auditRowsOf('audit')}, ${notifyOf('rotated')} FROM rotated`,

    /** Logout and expiry: the row goes, its event stays. */
    deleteWithEvent: `
    WITH gone AS (DELETE FROM user_sessions WHERE id = $1 RETURNING id, user_id), audit AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT $2, id, user_id, $3, $4, $5, $6::jsonb FROM gone
      ${AUDITED}
    )
    SELECT (SELECT count(*)::int FROM gone) AS count, ${auditRowsOf('audit')}, ${notifyOf('gone')}`,

    /**
     * Revocation keeps a data-less tombstone until the row would have expired anyway, so the
     * holder of the token is told 'revoked' rather than 'invalid'. $7 scopes it to one user.
     * A `revoked` row always names an actor: the caller's, else the session's owner (who
     * revokes their own session, changes their password, is evicted by their own login).
     * `token_reuse_detected` is the system's doing and keeps a null actor unless one is given.
     */
    revoke: `
    WITH revoked AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = $3, data = '{}'::jsonb
      WHERE id = $1 AND revoked_at IS NULL AND ($7::text IS NULL OR user_id = $7)
      RETURNING id, user_id
    ), audit AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT $2, id, user_id, coalesce($4, CASE WHEN $2 = 'revoked' THEN user_id END), $5, $6,
             jsonb_build_object('reason', $3::text) || coalesce($8::jsonb, '{}'::jsonb)
      FROM revoked
      ${AUDITED}
    )
    SELECT (SELECT count(*)::int FROM revoked) AS count, ${auditRowsOf('audit')}, ${notifyOf('revoked')}`,

    revokeAllForUser: `
    WITH revoked AS (
      UPDATE user_sessions SET revoked_at = now(), revoke_reason = $2, data = '{}'::jsonb
      WHERE user_id = $1 AND revoked_at IS NULL AND ($3::uuid IS NULL OR id <> $3)
      RETURNING id, user_id
    ), per_session AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT 'revoked', id, user_id, coalesce($4, $1), $5, $6, jsonb_build_object('reason', $2::text) FROM revoked
      ${AUDITED}
    ), summary AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT 'revoked_all', NULL, $1, coalesce($4, $1), $5, $6,
             jsonb_build_object('reason', $2::text, 'count', count(*), 'except', $3::uuid)
      FROM revoked
      ${AUDITED}
    )
    SELECT (SELECT count(*)::int FROM revoked) AS count, ${auditRowsOf('per_session', 'summary')}, ${notifyOf('revoked')}`,

    listForUser: `
    SELECT id, created_at, last_seen_at, LEAST(idle_expires_at, absolute_expires_at) AS expires_at, ip, user_agent
    FROM user_sessions
    WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
    ORDER BY created_at DESC, id`,

    /** Per-key merge: concurrent patches of different keys both survive. */
    patchData: `
    WITH patched AS (
      UPDATE user_sessions SET data = data || $2::jsonb, version = version + 1
      WHERE id = $1 AND revoked_at IS NULL AND octet_length((data || $2::jsonb)::text) <= $3
      RETURNING id, data
    )
    SELECT data, ${notifyOf('patched')} FROM patched`,

    /** Per-user session limit: serialises logins of one user (transaction-scoped; key space 'nps2'). */
    lockUserSessions: `SELECT pg_advisory_xact_lock(${0x6e70_7332}, hashtext($1))`,

    /** Live sessions of a user, not counting the one a login is about to replace (fixation). */
    countLiveForUser: `
    SELECT count(*)::int AS count FROM user_sessions
    WHERE user_id = $1 AND ${LIVE}
      AND ($2::bytea IS NULL OR (token_hash <> $2 AND previous_token_hash IS DISTINCT FROM $2))`,

    /**
     * Client binding as detection: when a request's address or user agent differs from the
     * row's, store the new one and audit the change, all in one statement. Under concurrency
     * the row lock makes it happen once per change: later requests see the updated row.
     */
    recordClientChange: `
    WITH current AS (
      SELECT id, user_id, ip, user_agent FROM user_sessions WHERE id = $1 AND revoked_at IS NULL FOR UPDATE
    ), changed AS (
      UPDATE user_sessions s SET ip = $2, user_agent = $3
      FROM current c
      WHERE s.id = c.id AND (c.ip IS DISTINCT FROM $2 OR c.user_agent IS DISTINCT FROM $3)
      RETURNING s.id, s.user_id, c.ip AS old_ip, c.user_agent AS old_user_agent
    ), ip_audit AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT 'ip_changed', id, user_id, NULL, $2, $3, jsonb_build_object('from', old_ip, 'to', $2::text)
      FROM changed WHERE old_ip IS DISTINCT FROM $2
      ${AUDITED}
    ), ua_audit AS (
      INSERT INTO ${AUDIT_COLUMNS}
      SELECT 'ua_changed', id, user_id, NULL, $4, $3, jsonb_build_object('from', old_user_agent, 'to', $3::text)
      FROM changed WHERE old_user_agent IS DISTINCT FROM $3
      ${AUDITED}
    )
    SELECT old_ip, old_user_agent, ${auditRowsOf('ip_audit', 'ua_audit')}, ${notifyOf('changed')} FROM changed`,

    /** Aggregated events (invalid_token, csrf_failed): many rows, one statement, once per window. */
    insertAggregatedEvents: `
    INSERT INTO session_audit_log (event, session_id, user_id, ip, user_agent, details)
    SELECT r.event, r.session_id, r.user_id, r.ip, r.user_agent, r.details
    FROM jsonb_to_recordset($1::jsonb) AS r(event text, session_id uuid, user_id text, ip text, user_agent text, details jsonb)
    ${AUDITED}`,

    findLiveById: `
    SELECT ${ROW} FROM user_sessions
    WHERE id = $1 AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()`,
  } as const;
}

export const SQL = sessionSql(true);
export const SQL_WITHOUT_NOTIFY = sessionSql(false);

/**
 * The database could not be reached or did not answer in time. An HttpException, so that
 * wherever it surfaces (guard, service call in a handler) the client gets 503, not 500.
 */
export class StoreUnavailableError extends ServiceUnavailableException {
  constructor(
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super({ statusCode: 503, error: 'Service Unavailable', message: 'Session store unavailable' }, options);
    this.name = 'StoreUnavailableError';
  }
}

/** A login refused by the per-user session limit (policy 'reject'). */
export class SessionLimitExceededError extends Error {
  override name = 'SessionLimitExceededError';
  constructor(readonly limit: number) {
    super(`session limit of ${limit} reached`);
  }
}

/** One aggregated audit row (see AggregatedAuditLog). */
export interface AggregatedAuditRow {
  event: string;
  session_id: string | null;
  user_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

export type PatchResult =
  { ok: true; data: Record<string, unknown> } | { ok: false; reason: 'not_found' | 'too_large' };

export interface CreateSessionParams {
  tokenHash: Buffer;
  /** Hash of a token the request already carried: that session is revoked (fixation). */
  replacesTokenHash: Buffer | null;
  userId: string;
  data: Record<string, unknown>;
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
  ip: string | null;
  userAgent: string | null;
  /** Per-user cap on live sessions; the user's logins are serialised while it is checked. */
  limit?: { maxSessionsPerUser: number; policy: 'evict-oldest' | 'reject' };
}

export interface RotateParams {
  id: string;
  oldTokenHash: Buffer;
  newTokenHash: Buffer;
  idleTimeoutMs: number;
  reason: 'interval' | 'manual' | 'reauthenticated';
  reauthenticated: boolean;
  context: AuditContext;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Session ids come from URLs too: anything that is not a uuid simply matches no session. */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

function asStoreError(error: unknown): unknown {
  return isConnectionError(error) ? new StoreUnavailableError((error as Error).message, { cause: error }) : error;
}

/**
 * A pg error that means "not reachable or not answering now", as opposed to a problem with
 * the statement: connection exceptions (08), operator intervention and statement timeout
 * (57), resources (53), serialization failure and deadlock (40), read-only after a failover
 * (25006), lock not available (55P03), and a new connection refused because the database is
 * gone or the credentials no longer work (3D000, 28: a dropped or renamed database, a rotated
 * password). All are worth a 503 and a retry, never a 500.
 */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && /^(08|57|53|40)/.test(code)) return true;
  if (code === '25006' || code === '55P03' || code === '3D000' || (typeof code === 'string' && code.startsWith('28')))
    return true;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ETIMEDOUT, ...
  const message = error instanceof Error ? error.message : '';
  return /timeout|terminated|Connection|ECONN/i.test(message) && code === undefined;
}

/**
 * Told which sessions a committed statement changed (the ids it also sent by NOTIFY), so
 * this instance's cache drops them at once rather than when its own notice comes back.
 */
export interface SessionChangeSink {
  evictSession(id: string): void;
  evictAll(): void;
}

export class SessionStore {
  private readonly errorLog = new StoreErrorLog();
  private readonly sql: typeof SQL;

  constructor(
    private readonly pool: Pool,
    private readonly queryTimeoutMs = 5_000,
    /** Receives each audit row after its statement committed (SessionEvents). */
    private readonly events?: AuditEventSink,
    /** The local cache, if any. */
    private readonly changes?: SessionChangeSink,
    /** Only when metrics are enabled: without it, no statement reads the clock. */
    private readonly metrics?: SessionMetrics,
    /** Announce changes on INVALIDATION_CHANNEL (`cache.notify`). */
    notify = true,
  ) {
    this.sql = notify ? SQL : SQL_WITHOUT_NOTIFY;
  }

  async lookupByTokenHash(tokenHash: Buffer): Promise<SessionLookup | undefined> {
    const [row] = await this.run({ name: 'nps_lookup', text: this.sql.lookupByTokenHash, values: [tokenHash] });
    return row && toSessionLookup(row, row.is_current_token);
  }

  /** The new times when this call wrote; undefined when another request already had (at most one writes). */
  async touchIfStale(
    id: string,
    idleTimeoutMs: number,
    touchIntervalMs: number,
  ): Promise<{ lastSeenAt: Date; idleExpiresAt: Date } | undefined> {
    const [row] = await this.run({
      name: 'nps_touch',
      text: this.sql.touchIfStale,
      values: [id, idleTimeoutMs, touchIntervalMs],
    });
    if (row) this.metrics?.touch();
    return row && { lastSeenAt: row.last_seen_at, idleExpiresAt: row.idle_expires_at };
  }

  async create(p: CreateSessionParams): Promise<SessionLookup> {
    const evictBeyond = p.limit?.policy === 'evict-oldest' ? p.limit.maxSessionsPerUser : null;
    const insert = (run: (query: QueryConfig) => Promise<QueryResultRow[]>) =>
      run({
        text: this.sql.create,
        values: [
          p.replacesTokenHash,
          p.tokenHash,
          p.userId,
          JSON.stringify(p.data),
          p.idleTimeoutMs,
          p.absoluteTimeoutMs,
          p.ip,
          p.userAgent,
          evictBeyond,
        ],
      });
    const [row] =
      p.limit === undefined
        ? await insert((query) => this.run(query))
        : await this.transaction(async (run) => {
            // Serialise this user's logins, so counting and inserting see each other (READ COMMITTED:
            // every later statement of the transaction takes its snapshot after the lock is granted).
            await run({ text: this.sql.lockUserSessions, values: [p.userId] });
            if (p.limit!.policy === 'reject') {
              const [live] = await run({ text: this.sql.countLiveForUser, values: [p.userId, p.replacesTokenHash] });
              if (live.count >= p.limit!.maxSessionsPerUser)
                throw new SessionLimitExceededError(p.limit!.maxSessionsPerUser);
            }
            return insert(run);
          });
    this.publish(row.audit_rows);
    this.changed(row.notified_ids);
    return toSessionLookup(row, true);
  }

  /** undefined when another request rotated (or revoked) the session first. */
  async rotate(p: RotateParams): Promise<SessionLookup | undefined> {
    const [row] = await this.run({
      text: this.sql.rotate,
      values: [
        p.id,
        p.newTokenHash,
        p.oldTokenHash,
        p.idleTimeoutMs,
        p.context.actorId ?? null,
        p.context.ip ?? null,
        p.context.userAgent ?? null,
        p.reason,
        p.reauthenticated,
      ],
    });
    if (row) this.publish(row.audit_rows);
    if (row) this.changed(row.notified_ids);
    if (row) this.metrics?.rotation(p.reason);
    return row && toSessionLookup(row, true);
  }

  /** Deletes the row and records `event`; false when it was already gone. */
  async deleteWithEvent(
    id: string,
    event: 'logout' | 'expired_idle' | 'expired_absolute',
    context: AuditContext,
    details: Record<string, unknown> = {},
  ): Promise<boolean> {
    const [row] = await this.run({
      text: this.sql.deleteWithEvent,
      values: [
        id,
        event,
        context.actorId ?? null,
        context.ip ?? null,
        context.userAgent ?? null,
        JSON.stringify(details),
      ],
    });
    this.publish(row.audit_rows);
    this.changed(row.notified_ids);
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
    const [row] = await this.run({
      text: this.sql.revoke,
      values: [
        id,
        options.event ?? 'revoked',
        reason,
        context.actorId ?? null,
        context.ip ?? null,
        context.userAgent ?? null,
        options.onlyUserId ?? null,
        options.details ? JSON.stringify(options.details) : null,
      ],
    });
    this.publish(row.audit_rows);
    this.changed(row.notified_ids);
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
    const [row] = await this.run({
      text: this.sql.revokeAllForUser,
      values: [
        userId,
        reason,
        exceptId ?? null,
        context.actorId ?? null,
        context.ip ?? null,
        context.userAgent ?? null,
      ],
    });
    this.publish(row.audit_rows);
    this.changed(row.notified_ids);
    return row.count;
  }

  async listForUser(userId: string, currentId?: string): Promise<SessionSummary[]> {
    const rows = await this.run({ text: this.sql.listForUser, values: [userId] });
    return rows.map((r) => ({
      id: r.id,
      createdAt: r.created_at,
      lastSeenAt: r.last_seen_at,
      expiresAt: r.expires_at,
      ip: r.ip,
      userAgent: r.user_agent,
      current: r.id === currentId,
    }));
  }

  async findLiveById(id: string): Promise<SessionRow | undefined> {
    if (!isSessionId(id)) return undefined;
    const [row] = await this.run({ text: this.sql.findLiveById, values: [id] });
    return row && toSessionRow(row);
  }

  /** `patch` must already be serialisable JSON that Postgres accepts (the service checks). */
  async patchData(id: string, patch: Record<string, unknown>, maxBytes: number): Promise<PatchResult> {
    const [row] = await this.run({ text: this.sql.patchData, values: [id, JSON.stringify(patch), maxBytes] });
    if (row) this.changed(row.notified_ids);
    if (row) return { ok: true, data: row.data };
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
    const [row] = await this.run({ text: this.sql.recordClientChange, values: [id, ip, userAgent, requestIp] });
    if (row) this.publish(row.audit_rows);
    if (row) this.changed(row.notified_ids);
    return {
      ipChanged: row !== undefined && row.old_ip !== ip,
      userAgentChanged: row !== undefined && row.old_user_agent !== userAgent,
    };
  }

  async insertAggregatedEvents(rows: AggregatedAuditRow[]): Promise<void> {
    if (rows.length > 0)
      this.publish(await this.run({ text: this.sql.insertAggregatedEvents, values: [JSON.stringify(rows)] }));
  }

  /** Hands the audit rows a statement wrote to the event sink; only called after it returned (committed). */
  private publish(rows: unknown): void {
    if (!this.events || !Array.isArray(rows)) return;
    for (const row of rows) this.events.publish(toAuditRecord(row));
  }

  private changed(ids: unknown): void {
    if (!this.changes || !Array.isArray(ids)) return;
    for (const id of ids) this.changes.evictSession(String(id));
  }

  /** One statement, bounded as a whole (queryWithin), timed for the metrics, its failure logged and classified. */
  private run(query: QueryConfig, client: Pool | PoolClient = this.pool): Promise<QueryResultRow[]> {
    const started = this.metrics && performance.now();
    return new Promise((resolve, reject) =>
      queryWithin(
        client,
        query,
        this.queryTimeoutMs,
        () => new StoreUnavailableError(`no answer within ${this.queryTimeoutMs} ms`),
        (error, rows) => {
          if (started !== undefined) this.metrics!.statement(query.text, started);
          if (rows) return resolve(rows);
          this.errorLog.report(query.text, error);
          reject(asStoreError(error));
        },
      ),
    );
  }

  /** Runs `work` in one transaction on one connection; any error rolls it back. */
  private async transaction<T>(
    work: (run: (query: QueryConfig) => Promise<QueryResultRow[]>) => Promise<T>,
  ): Promise<T> {
    const client = await this.pool.connect().catch((error: unknown) => {
      this.errorLog.report('BEGIN', error);
      throw asStoreError(error);
    });
    let broken = false;
    try {
      await this.run({ text: 'BEGIN' }, client);
      const result = await work((query) => this.run(query, client));
      await this.run({ text: 'COMMIT' }, client);
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

/** An admin revocation must say which admin: the audit row is the only record of who did it. */
function requireActorForAdmin(reason: RevokeReason, context: AuditContext): void {
  if (reason === 'admin' && !context.actorId)
    throw new TypeError("revoking with reason 'admin' needs the admin's id as actorId");
}

/** A row of a statement that also returned `db_now`, built as one object literal (the lookup is on the hot path). */
function toSessionLookup(r: QueryResultRow, isCurrentToken: boolean): SessionLookup {
  return {
    id: r.id,
    userId: r.user_id,
    data: r.data,
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    authenticatedAt: r.authenticated_at,
    idleExpiresAt: r.idle_expires_at,
    absoluteExpiresAt: r.absolute_expires_at,
    rotatedAt: r.rotated_at,
    revokedAt: r.revoked_at,
    ip: r.ip,
    userAgent: r.user_agent,
    version: r.version,
    isCurrentToken,
    dbNow: r.db_now,
  };
}

function toSessionRow(r: QueryResultRow): SessionRow {
  const { isCurrentToken: _current, dbNow: _now, ...row } = toSessionLookup(r, false);
  return row;
}
