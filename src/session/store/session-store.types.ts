import type { AuditContext } from '../audit/audit-event.js';

export interface CreateSessionParams {
  tokenHash: Buffer;
  /** Hash of a token the request already carried: that session is revoked (fixation). */
  replacesTokenHash: Buffer | null;
  /** null: a guest session. */
  userId: string | null;
  data: Record<string, unknown>;
  /** The lifetime profile's name, recorded in the row (default 'default'); the timeouts below are its. */
  lifetime?: string;
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
  ip: string | null;
  userAgent: string | null;
  /**
   * When `replacesTokenHash` is a live guest's token: the new session's data from the guest's
   * (in place of `data`), worked out while the guest row is locked. May throw to refuse the login.
   */
  carryGuest?: (guestData: Record<string, unknown>) => Record<string, unknown>;
  /** With encryption on: the bound of the data as stored (sealed), checked before the insert. */
  maxDataBytes?: number;
  /** Per-user cap on live sessions; the user's logins are serialised while it is checked. */
  limit?: { maxSessionsPerUser: number; policy: 'evict-oldest' | 'reject' };
  /** The session waits for a second factor (its timeouts above are already the short ones). */
  secondFactorPending?: boolean;
  /** With `secondFactorPending`: the user's pending sessions kept, this one included. */
  maxPendingPerUser?: number;
}

export interface CompleteSecondFactorParams {
  id: string;
  /** The pending token's hash: only its holder acts on the session. */
  tokenHash: Buffer;
  newTokenHash: Buffer;
  /** The lifetime profile's, counted from completion. */
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
  maxAttempts: number;
  context: AuditContext;
  /** The session's user and the module's `sessionLimit`: applied now, as a login's is. */
  userId: string;
  limit?: { maxSessionsPerUser: number; policy: 'evict-oldest' | 'reject' };
}

/** A failed second-factor attempt; `counted`: not reserved before. */
export type FailSecondFactorParams = Omit<
  CompleteSecondFactorParams,
  'newTokenHash' | 'idleTimeoutMs' | 'absoluteTimeoutMs' | 'userId' | 'limit'
> & {
  counted: boolean;
};

export interface RotateParams {
  id: string;
  oldTokenHash: Buffer;
  newTokenHash: Buffer;
  idleTimeoutMs: number;
  reason: 'interval' | 'manual' | 'reauthenticated';
  reauthenticated: boolean;
  context: AuditContext;
}

export interface StartImpersonationParams {
  /** The admin's own (live, non-impersonation) session. */
  impersonatorSessionId: string;
  /** The user to act as. */
  userId: string;
  tokenHash: Buffer;
  idleTimeoutMs: number;
  maxDurationMs: number;
  /** Required, bounded text: recorded in the audit row's details. */
  reason: string;
  context: AuditContext;
}

export interface StopImpersonationParams {
  /** The impersonation session. */
  id: string;
  /** The admin session's new token. */
  newTokenHash: Buffer;
  /** The admin session's profile's idle timeout. */
  idleTimeoutMs: number;
  context: AuditContext;
}

export type PatchResult =
  { ok: true; data: Record<string, unknown> } | { ok: false; reason: 'not_found' | 'too_large' };

/** One aggregated audit row (see AggregatedAuditLog). */
export interface AggregatedAuditRow {
  event: string;
  session_id: string | null;
  user_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}
