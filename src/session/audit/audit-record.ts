import type { AuditEvent } from './audit-event.js';

/** One row of `session_audit_log`, as queries return it and as `SessionEvents` emits it. */
export interface SessionAuditRecord {
  /** The row's bigint id, as a string (it can outgrow a JS number). */
  id: string;
  /** When the statement that recorded it ran (database clock, UTC). */
  occurredAt: Date;
  event: AuditEvent;
  /** The session's stable uuid; never a token or token hash. Null for per-user events such as `revoked_all`. */
  sessionId: string | null;
  userId: string | null;
  /** Who caused it: the user, an admin, or null for the system (expiry, reuse detection, purge). */
  actorId: string | null;
  ip: string | null;
  /** As the client sent it, bounded in length. Escape it wherever it is printed. */
  userAgent: string | null;
  details: Record<string, unknown>;
}

/**
 * The columns every audit-writing statement returns (`RETURNING ${AUDIT_RECORD_COLUMNS}`),
 * so the row it wrote can be emitted as it is stored.
 */
export const AUDIT_RECORD_COLUMNS = `id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details`;

/** Maps a row with AUDIT_RECORD_COLUMNS (from pg, or from json_agg where times are strings). */
export function toAuditRecord(row: Record<string, unknown>): SessionAuditRecord {
  return {
    id: String(row.id),
    occurredAt: new Date(row.occurred_at as string | Date),
    event: row.event as AuditEvent,
    sessionId: (row.session_id as string | null) ?? null,
    userId: (row.user_id as string | null) ?? null,
    actorId: (row.actor_id as string | null) ?? null,
    ip: (row.ip as string | null) ?? null,
    userAgent: (row.user_agent as string | null) ?? null,
    details: (row.details as Record<string, unknown> | null) ?? {},
  };
}
