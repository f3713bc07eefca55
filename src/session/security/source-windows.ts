import { LRUCache } from 'lru-cache';

/** One source's current window: how many events it has counted, and when it ends. */
export interface SourceWindow {
  readonly count: number;
  readonly endsAt: number;
}

/**
 * Fixed-window counters per request source (IPv4 address or IPv6 /64), for the limits that
 * refuse a source before any SQL. Bounded: the least recently counted sources are forgotten
 * past `maxSources`. Per app instance, in memory.
 */
export class SourceWindows {
  private readonly windows: LRUCache<string, { startedAt: number; count: number }>;

  constructor(
    private readonly windowMs: number,
    maxSources: number,
  ) {
    this.windows = new LRUCache({ max: maxSources });
  }

  get size(): number {
    return this.windows.size;
  }

  /** Counts one event of `source`; a window starts with the first event after the last one ended. */
  count(source: string, now: number): SourceWindow {
    let window = this.windows.get(source);
    if (!window || now >= window.startedAt + this.windowMs) {
      window = { startedAt: now, count: 0 };
      this.windows.set(source, window);
    }
    window.count++;
    return { count: window.count, endsAt: window.startedAt + this.windowMs };
  }

  /** The source's window if one is running at `now`, without counting anything. */
  current(source: string, now: number): SourceWindow | undefined {
    const window = this.windows.get(source);
    if (!window || now >= window.startedAt + this.windowMs) return undefined;
    return { count: window.count, endsAt: window.startedAt + this.windowMs };
  }
}
