import type { Statement } from '../store/statement.js';

/** What the socket registry reads (socket/socket-session.registry.ts). */
export const SOCKET_SQL = {
  /**
   * The state of every session that has open sockets on this instance, in one read by primary
   * key: after a NOTIFY, at a socket's expiry deadline, and every `sockets.recheckInterval`
   * without NOTIFY. A session missing from the answer was deleted (logout, or expiry).
   */
  socketSessionStates: {
    name: 'socketSessionStates',
    text: `
    SELECT id, revoked_at, revoke_reason, last_seen_at, idle_expires_at, absolute_expires_at, now() AS db_now
    FROM user_sessions
    WHERE id = ANY($1::uuid[])`,
  },
} as const satisfies Record<string, Statement>;
