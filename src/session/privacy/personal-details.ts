/**
 * Top-level `details` keys that name an IP address or a user agent: `from`/`to` of `ip_changed`
 * and `ua_changed` rows (and of a `revoked` row with reason `ua_changed`), `user_agents` of the
 * aggregated `invalid_token`/`csrf_failed`/`guest_limited` rows. A new key that holds either
 * belongs here AND in a migration that rebuilds session_audit_log_personal_idx with it.
 */
export const PERSONAL_DETAILS_KEYS = ['from', 'to', 'user_agents'] as const;

/** PERSONAL_DETAILS_KEYS as an SQL text array literal. */
const PERSONAL_DETAILS_ARRAY = `ARRAY[${PERSONAL_DETAILS_KEYS.map((key) => `'${key}'`).join(', ')}]`;

/**
 * Rows that still hold personal data, word for word the predicate of session_audit_log_personal_idx
 * (migration AddAuditPersonalDataIndex1796688000001; a unit test compares them): the planner uses a
 * partial index only for a query whose WHERE repeats it.
 */
export const HOLDS_PERSONAL_DATA = `(ip IS NOT NULL OR user_agent IS NOT NULL OR details ?| ${PERSONAL_DETAILS_ARRAY})`;

/** The SET list that takes an audit row out of that predicate: no address, no user agent, no personal details. */
export const STRIP_PERSONAL_DATA = `ip = NULL, user_agent = NULL, details = details - ${PERSONAL_DETAILS_ARRAY}`;

/** A `details` object without PERSONAL_DETAILS_KEYS (the export's rows about others, in JS). */
export function withoutPersonalDetails(details: Record<string, unknown>): Record<string, unknown> {
  const kept = { ...details };
  for (const key of PERSONAL_DETAILS_KEYS) delete kept[key];
  return kept;
}
