import type { QueryResultRow } from 'pg';

/** A session as the store returns it. Never carries a token or token hash. */
export interface SessionRow {
  id: string;
  /** null: a guest session. */
  userId: string | null;
  data: Record<string, unknown>;
  createdAt: Date;
  lastSeenAt: Date;
  authenticatedAt: Date;
  idleExpiresAt: Date;
  absoluteExpiresAt: Date;
  rotatedAt: Date;
  revokedAt: Date | null;
  ip: string | null;
  userAgent: string | null;
  version: number;
  /** The lifetime profile it was created with ('default', 'guest', or a name from the `lifetimes` option). */
  lifetime: string;
  /** An impersonation session: the admin acting as `userId`; null otherwise. */
  impersonatorId: string | null;
  /** An impersonation session: the admin's own session, to return to; null otherwise. */
  impersonatorSessionId: string | null;
  /** Waiting for its second factor (`create(..., { pendingSecondFactor: true })`). */
  secondFactorPending: boolean;
}

/** A lookup result: the row, which token generation matched, and the database's clock. */
export interface SessionLookup extends SessionRow {
  /** false when the presented token is the rotated-out previous one. */
  isCurrentToken: boolean;
  dbNow: Date;
}

/** Neither deadline has passed at `now` (epoch ms, default: the row's own `dbNow`); revocation is a separate question. */
export function isLiveAt(row: SessionLookup, now = row.dbNow.getTime()): boolean {
  return now < row.idleExpiresAt.getTime() && now < row.absoluteExpiresAt.getTime();
}

/** What `list()` shows a user about each of their sessions. */
export interface SessionSummary {
  id: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  ip: string | null;
  userAgent: string | null;
  /** The lifetime profile chosen at login ('default', 'remember', ...). */
  lifetime: string;
  current: boolean;
  /** Opened by this admin acting as the user (impersonation); absent on the user's own sessions. */
  impersonatedBy?: string;
  /** The password was given but the second factor not yet: someone is mid-login (absent on full sessions). */
  secondFactorPending?: true;
}

/** A user_sessions row as a store statement returns it, with `db_now`; one object literal (the lookup is on the hot path). */
export function toSessionLookup(r: QueryResultRow, isCurrentToken: boolean): SessionLookup {
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
    lifetime: r.lifetime,
    impersonatorId: r.impersonator_id ?? null,
    impersonatorSessionId: r.impersonator_session_id ?? null,
    secondFactorPending: r.second_factor_pending === true,
    isCurrentToken,
    dbNow: r.db_now,
  };
}

/** The same row without the lookup's own fields. */
export function toSessionRow(r: QueryResultRow): SessionRow {
  const { isCurrentToken: _current, dbNow: _now, ...row } = toSessionLookup(r, false);
  return row;
}

/** A token found among a session's retired ones, with what reuse detection decides on (database clock). */
export interface RetiredToken {
  sessionId: string;
  /** The presented token's generation: 0 for the token issued at login, +1 per rotation. */
  generation: number;
  /** The session's current token's generation. */
  currentGeneration: number;
  retiredAt: Date;
  revokedAt: Date | null;
  idleExpiresAt: Date;
  absoluteExpiresAt: Date;
  dbNow: Date;
}

/** A findRetiredToken row. */
export function toRetiredToken(r: QueryResultRow): RetiredToken {
  return {
    sessionId: r.session_id,
    generation: r.token_generation,
    currentGeneration: r.current_generation,
    retiredAt: r.retired_at,
    revokedAt: r.revoked_at,
    idleExpiresAt: r.idle_expires_at,
    absoluteExpiresAt: r.absolute_expires_at,
    dbNow: r.db_now,
  };
}

/**
 * Retired token hashes kept per session, newest first; an older one is forgotten, and
 * presenting it then answers `invalid` like any unknown token. 64 covers every periodic
 * rotation of a session at the defaults (absoluteTimeout 12h / rotationInterval 15m = 48)
 * plus 16 manual or step-up ones, at about 100 bytes each (hash, index entries, row).
 */
export const RETIRED_TOKENS_KEPT = 64;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Session ids come from URLs too: anything that is not a uuid simply matches no session. */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}
