/** Every event the module records in `session_audit_log`. */
export const AUDIT_EVENTS = [
  'created',
  'rotated',
  'logout',
  'revoked',
  'revoked_all',
  'expired_idle',
  'expired_absolute',
  'purged',
  'token_reuse_detected',
  'csrf_failed',
  'invalid_token',
  'ip_changed',
  'ua_changed',
  'guest_created',
  'guest_upgraded',
  'guest_limited',
  'impersonation_started',
  'impersonation_ended',
  'second_factor_completed',
  'second_factor_failed',
  'personal_data_erased',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

/** Why a session was revoked (`details.reason` of a `revoked` row); `data_unreadable`: a value of its data failed decryption. */
export type RevokeReason =
  | 'user'
  | 'admin'
  | 'revoke_others'
  | 'password_change'
  | 'limit_evicted'
  | 'fixation'
  | 'token_reuse'
  | 'ua_changed'
  | 'data_unreadable';

/** Who did it and from where; stored with the event. */
export interface AuditContext {
  actorId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
}

export const MAX_USER_AGENT_LENGTH = 512;
export const MAX_IP_LENGTH = 64;

/**
 * Request-supplied strings are stored as given but bounded, and without NUL (which Postgres
 * text refuses). Anything printing them (logs, admin UIs) must still escape them.
 */
export function boundText(value: string | null | undefined, max: number): string | null {
  if (value === undefined || value === null) return null;
  return value.slice(0, max).replaceAll('\u0000', '\ufffd');
}
