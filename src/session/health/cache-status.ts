/**
 * Injection token of the session cache's status, read by SessionHealth: SessionModule's
 * invalidation listener. With the cache off, `enabled` is false and health reports 'disabled'.
 */
export const SESSION_CACHE_STATUS = Symbol('SESSION_CACHE_STATUS');

export interface SessionCacheStatus {
  /** Whether the cache serves lookups. */
  readonly enabled: boolean;
  /** Whether its invalidation listener (LISTEN/NOTIFY) is connected; while not, lookups read the database. */
  readonly connected: boolean;
}
