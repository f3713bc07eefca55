import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { DemoConfigError, loadDemoConfig } from '../../src/demo/demo-config.js';
import { clockOffset, SessionCache } from '../../src/session/cache/session-cache.js';
import { resolveSessionOptions, SessionOptionsError } from '../../src/session/session.options.js';
import type { SessionLookup } from '../../src/session/store/session-row.js';

const HOUR = 3_600_000;

/** A manual clock, so TTL and offset math are exact. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function row(id: string, dbNow: number, extra: Partial<SessionLookup> = {}): SessionLookup {
  return {
    id,
    userId: 'u1',
    data: {},
    createdAt: new Date(dbNow - 1000),
    lastSeenAt: new Date(dbNow - 1000),
    authenticatedAt: new Date(dbNow - 1000),
    idleExpiresAt: new Date(dbNow + HOUR),
    absoluteExpiresAt: new Date(dbNow + 2 * HOUR),
    rotatedAt: new Date(dbNow - 1000),
    revokedAt: null,
    ip: null,
    userAgent: null,
    version: 1,
    lifetime: 'default',
    impersonatorId: null,
    impersonatorSessionId: null,
    secondFactorPending: false,
    isCurrentToken: true,
    dbNow: new Date(dbNow),
    ...extra,
  };
}

/** A cache that is enabled and whose listener is listening. */
function listeningCache(maxEntries = 100, ttlMs = 5_000, now = clock().now) {
  const cache = new SessionCache(true, maxEntries, ttlMs, now);
  cache.resume();
  return cache;
}

/** A token digest, as SessionValidator keys the cache (tokenDigest: 32 latin1 characters). */
const hash = () => randomBytes(32).toString('latin1');

describe('SessionCache', () => {
  it('holds at most maxEntries sessions, dropping the least recently used', () => {
    const cache = listeningCache(3);
    const hashes = [hash(), hash(), hash(), hash()];
    hashes.slice(0, 3).forEach((h, i) => expect(cache.set(h, row(`s${i}`, 0), 0, cache.ticket())).toBe(true));
    expect(cache.get(hashes[0])?.row.id).toBe('s0'); // s0 is now the most recently used
    cache.set(hashes[3], row('s3', 0), 0, cache.ticket());
    expect(cache.size).toBe(3);
    expect(cache.get(hashes[1])).toBeUndefined(); // the least recently used went
    expect(cache.get(hashes[0])?.row.id).toBe('s0');
    expect(cache.get(hashes[3])?.row.id).toBe('s3');
  });

  it("serves the session's data frozen, so no request can change what later requests are served", () => {
    const cache = listeningCache();
    const h = hash();
    cache.set(h, row('s1', 0, { data: { cart: ['a'], role: 'user' } }), 0, cache.ticket());
    const first = cache.get(h)!;
    expect(() => (first.row.data.cart as string[]).push('injected')).toThrow(TypeError);
    expect(() => {
      first.row.data.role = 'admin';
    }).toThrow(TypeError);
    expect(cache.get(h)!.row.data).toEqual({ cart: ['a'], role: 'user' });
  });

  it('serves an entry for its TTL only', () => {
    const c = clock();
    const cache = listeningCache(100, 5_000, c.now);
    const h = hash();
    cache.set(h, row('s1', c.now()), 0, cache.ticket());
    c.advance(4_999);
    expect(cache.get(h)?.row.id).toBe('s1');
    c.advance(2);
    expect(cache.get(h)).toBeUndefined();
  });

  it('evicts every token hash of a session by its id, and only those', () => {
    const cache = listeningCache();
    const [a1, a2, b] = [hash(), hash(), hash()];
    cache.set(a1, row('a', 0), 0, cache.ticket());
    cache.set(a2, row('a', 0), 0, cache.ticket());
    cache.set(b, row('b', 0), 0, cache.ticket());
    cache.evictSession('a');
    expect(cache.get(a1)).toBeUndefined();
    expect(cache.get(a2)).toBeUndefined();
    expect(cache.get(b)?.row.id).toBe('b');
    cache.evictAll();
    expect(cache.get(b)).toBeUndefined();
  });

  it('refuses a row read before its session was evicted (a revoke raced the read)', () => {
    const cache = listeningCache();
    const h = hash();
    const ticket = cache.ticket(); // the request starts its read...
    cache.evictSession('s1'); // ...a revoke notice arrives...
    expect(cache.set(h, row('s1', 0), 0, ticket)).toBe(false); // ...the old row must not be cached
    expect(cache.get(h)).toBeUndefined();
    // Another session's row read at the same time is fine; a read after the eviction too.
    expect(cache.set(hash(), row('s2', 0), 0, ticket)).toBe(true);
    expect(cache.set(h, row('s1', 0), 0, cache.ticket())).toBe(true);
    // A flush refuses every read that was in flight.
    const before = cache.ticket();
    cache.evictAll();
    expect(cache.set(hash(), row('s3', 0), 0, before)).toBe(false);
  });

  it('never caches a revoked row, a rotated-out token or an expired row', () => {
    const cache = listeningCache();
    expect(cache.set(hash(), row('s1', 0, { revokedAt: new Date(0) }), 0, cache.ticket())).toBe(false);
    expect(cache.set(hash(), row('s1', 0, { isCurrentToken: false }), 0, cache.ticket())).toBe(false);
    expect(cache.set(hash(), row('s1', 0, { idleExpiresAt: new Date(0) }), 0, cache.ticket())).toBe(false);
    expect(cache.set(hash(), row('s1', 0, { absoluteExpiresAt: new Date(-1) }), 0, cache.ticket())).toBe(false);
    expect(cache.size).toBe(0);
  });

  it('is bypassed while the listener is disconnected, and starts empty when it is back', () => {
    const cache = new SessionCache(true, 100, 5_000);
    const h = hash();
    expect(cache.usable).toBe(false); // not listening yet: nothing is served or stored
    expect(cache.set(h, row('s1', Date.now()), 0, cache.ticket())).toBe(false);
    cache.resume();
    expect(cache.set(h, row('s1', Date.now()), 0, cache.ticket())).toBe(true);
    const inFlight = cache.ticket();
    cache.suspend(); // connection lost: notices may be missed from now on
    expect(cache.usable).toBe(false);
    expect(cache.get(h)).toBeUndefined();
    expect(cache.set(h, row('s1', Date.now()), 0, cache.ticket())).toBe(false);
    cache.resume(); // LISTEN is back: what was in flight during the outage is not trusted
    expect(cache.size).toBe(0);
    expect(cache.set(h, row('s1', Date.now()), 0, inFlight)).toBe(false);
    expect(cache.set(h, row('s1', Date.now()), 0, cache.ticket())).toBe(true);
  });

  it('a disabled cache never serves, whatever the listener says', () => {
    const cache = new SessionCache(false, 100, 5_000);
    cache.resume();
    const h = hash();
    expect(cache.usable).toBe(false);
    expect(cache.set(h, row('s1', Date.now()), 0, cache.ticket())).toBe(false);
    expect(cache.get(h)).toBeUndefined();
  });

  it('gives a cached row the database clock: our clock plus the offset measured at the read', () => {
    const c = clock(50_000);
    const cache = listeningCache(100, 5_000, c.now);
    const h = hash();
    const sentAt = c.now();
    c.advance(20); // the statement took 20 ms; the database clock is 7 s ahead of ours
    const dbNow = new Date(sentAt + 7_000 + 10);
    const offset = clockOffset(dbNow, sentAt);
    expect(offset).toBe(7_010); // measured from the send: the estimate never lags the real database clock
    cache.set(h, row('s1', dbNow.getTime()), offset, cache.ticket());
    c.advance(1_000);
    const entry = cache.get(h)!;
    expect(cache.dbNowOf(entry)).toBe(c.now() + 7_010);
    expect(cache.dbNowOf(entry)).toBe(dbNow.getTime() + 1_020);
    expect(entry.row.dbNow).toEqual(dbNow); // the row itself keeps the time of its read
  });
});

describe('cache options', () => {
  it('default to off, 10000 entries, 5 s', () => {
    expect(resolveSessionOptions().cache).toEqual({ enabled: false, maxEntries: 10_000, ttlMs: 5_000, notify: false });
    expect(resolveSessionOptions({ cache: { enabled: true, maxEntries: 50, ttl: '60s' } }).cache).toEqual({
      enabled: true,
      maxEntries: 50,
      ttlMs: 60_000,
      notify: true,
    });
  });

  it('notify follows enabled; it may be on without a cache (mixed fleets), never off with one', () => {
    expect(resolveSessionOptions({ cache: { notify: true } }).cache.notify).toBe(true);
    expect(() => resolveSessionOptions({ cache: { enabled: true, notify: false } })).toThrow(
      /cache\.notify: cannot be false while cache\.enabled/,
    );
    expect(() => resolveSessionOptions({ cache: { notify: 'yes' as never } })).toThrow(/cache\.notify/);
  });

  it.each([
    [{ enabled: 'yes' }, 'cache.enabled'],
    [{ maxEntries: 0 }, 'cache.maxEntries'],
    [{ maxEntries: 1.5 }, 'cache.maxEntries'],
    [{ ttl: '61s' }, 'cache.ttl'],
    [{ ttl: 0 }, 'cache.ttl'],
    [{ ttl: 'soon' }, 'cache.ttl'],
    [{ size: 5 }, 'cache.size'],
  ])('refuse %j, naming the option', (cache, option) => {
    expect(() => resolveSessionOptions({ cache } as never)).toThrow(SessionOptionsError);
    expect(() => resolveSessionOptions({ cache } as never)).toThrow(new RegExp(`- ${option.replace('.', '\\.')}: `));
  });
});

describe('demo SESSION_CACHE / SESSION_CACHE_TTL', () => {
  const cacheOf = (env: Record<string, string>) => loadDemoConfig(env, 'postgres://x').session.cache;

  it('is on by default, off on request, with the TTL passed to the module', () => {
    expect(cacheOf({})).toEqual({ enabled: true });
    expect(cacheOf({ SESSION_CACHE: 'off' })).toEqual({ enabled: false });
    expect(cacheOf({ SESSION_CACHE: 'on', SESSION_CACHE_TTL: '2s' })).toEqual({ enabled: true, ttl: '2s' });
    expect(resolveSessionOptions(loadDemoConfig({ SESSION_CACHE_TTL: '10s' }, 'postgres://x').session).cache).toEqual({
      enabled: true,
      maxEntries: 10_000,
      ttlMs: 10_000,
      notify: true,
    });
  });

  it('refuses anything but on/off, and a TTL the module refuses', () => {
    expect(() => loadDemoConfig({ SESSION_CACHE: 'yes' }, 'postgres://x')).toThrow(DemoConfigError);
    expect(() => loadDemoConfig({ SESSION_CACHE: 'ON' }, 'postgres://x')).toThrow(
      /SESSION_CACHE must be 'on' or 'off'/,
    );
    expect(() => resolveSessionOptions(loadDemoConfig({ SESSION_CACHE_TTL: '5m' }, 'postgres://x').session)).toThrow(
      /cache\.ttl/,
    );
  });
});
