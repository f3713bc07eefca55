import type { Statement } from '../store/statement.js';

/** Every statement the metrics send (the session SQL lives in store/session.sql.ts). */
export const METRICS_SQL = {
  /**
   * Live user sessions, for the `active_sessions` gauge (guests are not users, so not counted):
   * a range scan of the idle-expiry index, run at most once per ACTIVE_SESSIONS_SAMPLE_MS per
   * instance, never once per scrape.
   */
  countActiveSessions: {
    name: 'countActiveSessions',
    text: `
    SELECT count(*)::int AS n FROM user_sessions
    WHERE revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now() AND user_id IS NOT NULL`,
  },
} as const satisfies Record<string, Statement>;

export const ACTIVE_SESSIONS_SAMPLE_MS = 60_000;
