import type { Duration } from '../duration.js';
import * as is from '../option-schema.js';

export class SessionCacheOptions {
  /** A hot session costs no SQL per request; a LISTEN connection per instance keeps the cache coherent. */
  @is.Bool() enabled?: boolean;
  /** Sessions held at once, least recently used dropped first (lru-cache allocates its index up front). */
  @is.Int(1, 1_000_000) maxEntries?: number;
  /** How long an entry may be served unread: NOTIFY evicts on change, the TTL bounds what a dead listener misses. */
  @is.Dur({ min: 1, max: '60s' }) ttl?: Duration;
  /**
   * Announce every session change on the `nest_pg_session` channel (NOTIFY), so caches evict.
   * Default: `enabled` or `sockets.enabled`. Set true on instances that do not cache when others in the fleet do. Off
   * without a cache because Postgres serialises the commits of all notifying transactions.
   */
  @is.Bool() notify?: boolean;
}
