import { IMPERSONATOR_END } from '../store/session.sql.js';
import type { Statement } from '../store/statement.js';

/** What the socket registry reads (socket/socket-session.registry.ts). */
export const SOCKET_SQL = {
  /**
   * The state of every session that has open sockets on this instance, in one read by primary
   * key: after a NOTIFY, at a socket's expiry deadline, and every `sockets.recheckInterval`
   * without NOTIFY. A session missing from the answer was deleted (logout, or expiry). An
   * impersonation session idles out when the admin's own session ends, as on the hot path.
   */
  socketSessionStates: {
    name: 'socketSessionStates',
    text: `
    SELECT id, revoked_at, revoke_reason, last_seen_at,
           CASE WHEN impersonator_session_id IS NULL THEN idle_expires_at
                ELSE least(idle_expires_at, ${IMPERSONATOR_END}) END AS idle_expires_at,
           absolute_expires_at, now() AS db_now
    FROM user_sessions s
    WHERE id = ANY($1::uuid[])`,
  },
} as const satisfies Record<string, Statement>;
