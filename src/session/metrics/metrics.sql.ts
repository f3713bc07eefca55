import { LIVE } from '../store/session.store.js';

/** Every statement the metrics send (the session SQL lives in store/session.store.ts). */
export const METRICS_SQL = {
  /**
   * Live sessions, for the `active_sessions` gauge: a range scan of the idle-expiry index,
   * run at most once per ACTIVE_SESSIONS_SAMPLE_MS per instance, never once per scrape.
   */
  countActiveSessions: `
    SELECT count(*)::int AS n FROM user_sessions WHERE ${LIVE}`,
} as const;

export const ACTIVE_SESSIONS_SAMPLE_MS = 60_000;
