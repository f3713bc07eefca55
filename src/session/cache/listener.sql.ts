import { INVALIDATION_CHANNEL } from '../store/session.sql.js';
import type { Statement } from '../store/statement.js';

/**
 * Payloads of the listener's probe notices start with this: never a session id (a uuid) nor
 * INVALIDATE_ALL, so every cache ignores every instance's probes.
 */
export const PROBE_PREFIX = 'probe:';

/** What the invalidation listener sends (the notices it hears come from store/session.sql.ts and purge.sql.ts). */
export const LISTENER_SQL = {
  listen: { name: 'listen', text: `LISTEN ${INVALIDATION_CHANNEL}` },
  /**
   * A notice to itself, sent on a second connection as other instances' notices are: if it
   * does not come back, LISTEN hears nothing (a transaction pooler hands the LISTEN to a server
   * connection that is no longer this client's when the notices arrive).
   */
  probe: { name: 'probe', text: `SELECT pg_notify('${INVALIDATION_CHANNEL}', $1)` },
} as const satisfies Record<string, Statement>;
