import type { Statement } from './statement.js';
import { CREATE_SQL } from './session-create.sql.js';
import { END_SQL } from './session-end.sql.js';
import { LOOKUP_SQL } from './session-lookup.sql.js';
import { UPDATE_SQL } from './session-update.sql.js';

export { IMPERSONATOR_END } from './session-lookup.sql.js';

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
 * Every statement the module sends about sessions, each complete as it runs (as Spring
 * Session's JdbcIndexedSessionRepository keeps them), so a reviewer can check each against
 * the indexes in the migration. They live by concern in the files beside this one (lookup,
 * create, update, end) and are all named here. Conventions shared by all of them:
 *
 * - Times come from the database (`now()`), so every app instance agrees on expiry.
 *   Durations arrive in milliseconds (`$n * interval '1 millisecond'`).
 * - A live session: `revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at
 *   > now()`, written out the same in every statement that needs it (a unit test checks).
 * - Lifecycle changes write their audit row in the same statement (data-modifying CTEs): no
 *   change without its event, no event without its change. The statement returns the rows
 *   it wrote as one json array (`audit_rows`, with the columns of AUDIT_RECORD_COLUMNS),
 *   emitted to SessionEvents once it has committed.
 * - A statement that changes sessions a cache may hold ends with `notified_ids`: when its
 *   last parameter (`notify`) is true, one pg_notify on INVALIDATION_CHANNEL per changed
 *   session, and the ids, so the store also evicts them locally at once. False: no notice
 *   (the gated subquery is not run) and `[]`. A scalar subquery in the final SELECT: a plain
 *   SELECT inside WITH runs only if the final query reads it, and the volatile pg_notify
 *   column is never pruned from the subquery.
 */
export const SESSION_SQL = {
  ...LOOKUP_SQL,
  ...CREATE_SQL,
  ...UPDATE_SQL,
  ...END_SQL,
  /** Aggregated events (invalid_token, csrf_failed): many rows, one statement, once per window. */
  insertAggregatedEvents: {
    name: 'insertAggregatedEvents',
    text: `
    INSERT INTO session_audit_log (event, session_id, user_id, ip, user_agent, details)
    SELECT r.event, r.session_id, r.user_id, r.ip, r.user_agent, r.details
    FROM jsonb_to_recordset($1::jsonb) AS r(event text, session_id uuid, user_id text, ip text, user_agent text, details jsonb)
    RETURNING id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details`,
  },
} as const satisfies Record<string, Statement>;
