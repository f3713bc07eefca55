import { LRUCache } from 'lru-cache';
import { freezeData } from '../session-data.js';
import { isLiveAt, type SessionLookup } from '../store/session-row.js';
import type { SessionChangeSink } from '../store/session.store.js';

/**
 * A cached lookup: the row as the database returned it (its `dbNow` is the time of that read),
 * and the database clock relative to ours. The row is shared by every request served from
 * the entry: read it, never change it.
 */
export interface CacheEntry {
  readonly row: SessionLookup;
  /** dbNow − local clock, measured when the row was read; "now" for this row is monotonicNow() + offsetMs (dbNowOf). */
  readonly offsetMs: number;
}

const TIME_ORIGIN = performance.timeOrigin; // fixed for the life of the process

/**
 * Our clock for cached entries: monotonic (an NTP step back cannot stretch an entry's life),
 * in epoch milliseconds like Date.now() so offsets stay readable.
 */
export const monotonicNow = (): number => TIME_ORIGIN + performance.now();

/**
 * The database clock's lead over ours, measured against the moment the statement was SENT.
 * The statement ran somewhere between sending and receiving, so this is the largest offset
 * consistent with the reading: the estimated database clock is never behind the real one,
 * and a cached copy can only look expired early (and be re-read), never late.
 */
export function clockOffset(dbNow: Date, sentAt: number): number {
  return dbNow.getTime() - sentAt;
}

/**
 * In-process copies of validated sessions, keyed by the token's SHA-256 (tokenDigest),
 * bounded by entry count and TTL. It is only "usable" while the invalidation listener holds
 * its LISTEN: when that connection is down, notices may be missed, so the cache empties
 * itself and every request reads the database until LISTEN is back (fail closed to the
 * database).
 *
 * Writes race with evictions: a request that read a row just before a revoke committed
 * could store the old row after the notice evicted it. So callers take a `ticket()` before
 * they read, and `set` refuses a row when its session (or everything) was evicted since.
 */
export class SessionCache implements SessionChangeSink {
  private readonly entries: LRUCache<string, CacheEntry>;
  /** session id → the digests of its cached tokens, so a notice naming the id finds them. */
  private readonly keysById = new Map<string, Set<string>>();
  private seq = 0;
  /** Last eviction (sequence number) per session id since `floor`. */
  private readonly evictedAt = new Map<string, number>();
  /** Tickets older than this are refused outright (after a flush, or when evictedAt was pruned). */
  private floor = 0;
  private listening = false;

  constructor(
    readonly enabled: boolean,
    readonly maxEntries: number,
    readonly ttlMs: number,
    private readonly now: () => number = monotonicNow,
    /** Hit/miss counters (SessionMetrics; a no-op unless metrics are enabled). */
    private readonly counters?: { cacheHit(): void; cacheMiss(): void },
  ) {
    this.entries = new LRUCache<string, CacheEntry>({
      max: enabled ? maxEntries : 1, // lru-cache sizes its index for `max` entries up front
      ttl: ttlMs,
      perf: { now },
      ttlResolution: 0, // the clock is read on each get: a cached "now" would stretch the TTL
      // Whatever removes an entry (LRU bound, TTL, eviction) also removes it from the id index.
      dispose: (entry, key) => this.unindex(entry.row.id, key),
    });
  }

  /** True when lookups may be served from here: enabled, and the listener is listening. */
  get usable(): boolean {
    return this.enabled && this.listening;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Taken before reading the database; pass it to `set` with what was read. */
  ticket(): number {
    return this.seq;
  }

  /**
   * The cached entry for a token's digest (tokenDigest), or undefined. Not a copy: every
   * request it serves shares it, so its `data` is frozen (see set) and a handler cannot change
   * what later requests are served.
   */
  get(digest: string): CacheEntry | undefined {
    if (!this.usable) return undefined;
    const entry = this.entries.get(digest);
    if (entry) this.counters?.cacheHit();
    else this.counters?.cacheMiss();
    return entry;
  }

  /** The database clock now (epoch ms) for a cached entry: our monotonic clock plus the offset measured at its read. */
  dbNowOf(entry: CacheEntry): number {
    return this.now() + entry.offsetMs;
  }

  /**
   * Stores a row read at `ticket`. Only live rows for the current token are cached: a
   * revoked or expired row, or a rotated-out token, always goes to the database, which decides it.
   */
  set(digest: string, row: SessionLookup, offsetMs: number, ticket: number): boolean {
    if (!this.usable || row.revokedAt || !row.isCurrentToken || !isLiveAt(row)) return false;
    if (ticket < this.floor || (this.evictedAt.get(row.id) ?? -1) > ticket) return false;
    freezeData(row.data); // as handlers get it anyway (RequestSession): every request served from here shares it
    this.entries.set(digest, { row, offsetMs });
    if (!this.entries.has(digest)) return false; // e.g. a ttl the cache refused
    let keys = this.keysById.get(row.id);
    if (!keys) this.keysById.set(row.id, (keys = new Set()));
    keys.add(digest);
    return true;
  }

  /** Drops every cached token of the session (revoked, rotated, logged out, data changed). */
  evictSession(id: string): void {
    if (!this.enabled) return; // the store reports every change; a disabled cache has nothing to drop
    this.evictedAt.set(id, ++this.seq);
    // Bounded memory: forgetting per-id marks is safe if every older ticket is refused.
    if (this.evictedAt.size > this.maxEntries) this.raiseFloor();
    const keys = this.keysById.get(id);
    if (!keys) return;
    for (const key of [...keys]) this.entries.delete(key);
    this.keysById.delete(id);
  }

  evictAll(): void {
    this.raiseFloor();
    this.entries.clear();
    this.keysById.clear();
  }

  /** The listener lost its connection: notices may be missed from now on, so serve nothing. */
  suspend(): void {
    this.listening = false;
    this.evictAll();
  }

  /** LISTEN is in place again; what was cached or read before it may have missed notices. */
  resume(): void {
    this.evictAll();
    this.listening = this.enabled;
  }

  private raiseFloor(): void {
    this.floor = ++this.seq;
    this.evictedAt.clear();
  }

  private unindex(id: string, key: string): void {
    const keys = this.keysById.get(id);
    if (!keys) return;
    keys.delete(key);
    if (keys.size === 0) this.keysById.delete(id);
  }
}
