import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { boundText, MAX_USER_AGENT_LENGTH } from '../audit/audit-event.js';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { SessionStore } from '../store/session.store.js';
import type { AggregatedAuditRow } from '../store/session-store.types.js';

/** Events an attacker can trigger at will; they are counted in memory and written once per window. */
export type AggregatedEvent = 'invalid_token' | 'csrf_failed' | 'guest_limited';

export interface Occurrence {
  event: AggregatedEvent;
  /** See sourceOf(): an IPv4 address or an IPv6 /64. */
  source: string;
  sessionId?: string | null;
  userId?: string | null;
  userAgent?: string | null;
  /** What happened, counted in `details.reasons` (e.g. 'unknown', 'malformed', 'blocked', 'csrf_token_missing'). */
  reason: string;
  /** The offending Origin/Referer origin, if any (a few distinct ones are kept). */
  origin?: string;
}

interface Tally {
  event: AggregatedEvent;
  source: string | null;
  sessionId: string | null;
  userId: string | null;
  /** The first MAX_USER_AGENTS distinct user agents of the window, with their request counts. */
  userAgents: Array<{ value: string; count: number }>;
  /** Requests with a user agent that is not in `userAgents` (a later distinct one), and with none. */
  otherUserAgents: number;
  noUserAgent: number;
  firstAt: number;
  lastAt: number;
  count: number;
  reasons: Record<string, number>;
  origins: string[];
  /** Requests whose origin was not kept (a later distinct one). */
  otherOrigins: number;
  /** Overflow tallies only: how many per-source tallies were folded in. */
  folded?: number;
}

const MAX_ORIGINS = 5;
const MAX_USER_AGENTS = 3;
const MAX_ORIGIN_LENGTH = 200;
const MAX_SWEEP_INTERVAL_MS = 5_000;

/**
 * The audit log's defence against being used as a write amplifier. Rows for invalid tokens
 * and CSRF failures are tallied in memory per (event, source, session) and written when the
 * tally's window ends: at most one row per key per window, however many requests caused it,
 * all rows of a sweep in one INSERT. Memory is bounded by an LRU; a tally pushed out of it is
 * folded into one overflow row per event and window (ip NULL, `details.folded` = how many).
 */
@Injectable()
export class AggregatedAuditLog implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('SessionAudit');
  private readonly windowMs: number;
  private readonly maxPending: number;
  private readonly tallies: LRUCache<string, Tally>;
  private readonly overflow = new Map<AggregatedEvent, Tally>();
  private pending: AggregatedAuditRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: SessionStore,
    @Inject(SESSION_OPTIONS) options: ResolvedSessionOptions,
  ) {
    this.windowMs = options.flood.windowMs;
    this.maxPending = options.flood.maxSources;
    this.tallies = new LRUCache<string, Tally>({
      max: options.flood.maxSources,
      dispose: (tally, _key, reason) => {
        if (reason === 'evict') this.foldIntoOverflow(tally);
      },
    });
  }

  onModuleInit(): void {
    // A few sweeps per window: a row is written at most a quarter window after its window ends.
    this.timer = setInterval(() => void this.flush(), Math.max(50, Math.min(this.windowMs / 4, MAX_SWEEP_INTERVAL_MS)));
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.flush({ all: true });
  }

  /** Counts one occurrence; no I/O. */
  record(occurrence: Occurrence, now = Date.now()): void {
    const key = `${occurrence.event}\u0000${occurrence.source}\u0000${occurrence.sessionId ?? ''}`;
    let tally = this.tallies.get(key);
    if (!tally) {
      tally = {
        event: occurrence.event,
        source: occurrence.source,
        sessionId: occurrence.sessionId ?? null,
        userId: occurrence.userId ?? null,
        userAgents: [],
        otherUserAgents: 0,
        noUserAgent: 0,
        firstAt: now,
        lastAt: now,
        count: 0,
        reasons: {},
        origins: [],
        otherOrigins: 0,
      };
      this.tallies.set(key, tally);
    }
    tally.lastAt = now;
    tally.count++;
    tally.reasons[occurrence.reason] = (tally.reasons[occurrence.reason] ?? 0) + 1;
    countUserAgent(tally, boundText(occurrence.userAgent, MAX_USER_AGENT_LENGTH));
    const origin = boundText(occurrence.origin, MAX_ORIGIN_LENGTH);
    if (origin !== null && !tally.origins.includes(origin)) {
      if (tally.origins.length < MAX_ORIGINS) tally.origins.push(origin);
      else tally.otherOrigins++;
    }
  }

  /**
   * Drops this instance's buffered tallies and unwritten rows of `userId` (erasure): written
   * after it, they would bring back the user's id and user agents. Other instances keep theirs.
   */
  forgetUser(userId: string): void {
    const keys = [...this.tallies.entries()].filter(([, tally]) => tally.userId === userId).map(([key]) => key);
    for (const key of keys) this.tallies.delete(key);
    this.pending = this.pending.filter((row) => row.user_id !== userId);
  }

  /**
   * Writes every tally whose window has ended (with `all`, every tally: shutdown). One INSERT
   * per call; rows that could not be written are retried on the next sweep, up to a bound.
   */
  async flush(options: { all?: boolean; now?: number } = {}): Promise<void> {
    while (this.flushing) await this.flushing;
    this.flushing = this.writeEnded(options.all === true, options.now ?? Date.now()).finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async writeEnded(all: boolean, now: number): Promise<void> {
    const ended = (tally: Tally) => all || now >= tally.firstAt + this.windowMs;
    const endedKeys = [...this.tallies.entries()].filter(([, tally]) => ended(tally)).map(([key]) => key);
    for (const key of endedKeys) {
      this.pending.push(toRow(this.tallies.peek(key)!));
      this.tallies.delete(key);
    }
    for (const [event, tally] of this.overflow) {
      if (!ended(tally)) continue;
      this.overflow.delete(event);
      this.pending.push(toRow(tally));
    }
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      await this.store.insertAggregatedEvents(batch);
    } catch (error) {
      const kept = batch.slice(-this.maxPending);
      this.pending = [...kept, ...this.pending].slice(-this.maxPending);
      this.logger.warn(
        `could not write ${batch.length} aggregated audit rows (kept ${kept.length} for retry): ${(error as Error).message}`,
      );
    }
  }

  private foldIntoOverflow(tally: Tally): void {
    let overflow = this.overflow.get(tally.event);
    if (!overflow) {
      overflow = {
        ...tally,
        source: null,
        sessionId: null,
        userId: null,
        userAgents: [],
        otherUserAgents: 0,
        noUserAgent: 0,
        count: 0,
        reasons: {},
        origins: [],
        otherOrigins: 0,
        folded: 0,
      };
      this.overflow.set(tally.event, overflow);
    }
    overflow.folded! += 1;
    overflow.count += tally.count;
    overflow.firstAt = Math.min(overflow.firstAt, tally.firstAt);
    overflow.lastAt = Math.max(overflow.lastAt, tally.lastAt);
    for (const [reason, n] of Object.entries(tally.reasons))
      overflow.reasons[reason] = (overflow.reasons[reason] ?? 0) + n;
    for (const { value, count } of tally.userAgents) countUserAgent(overflow, value, count);
    overflow.otherUserAgents += tally.otherUserAgents;
    overflow.noUserAgent += tally.noUserAgent;
  }
}

/**
 * Keeps what the whole window saw, not what its last request said (which the client chooses):
 * the first few distinct user agents with their counts, and how many requests had another one
 * or none. The first ones are kept, so a client cannot push out what it sent before.
 */
function countUserAgent(tally: Tally, userAgent: string | null, requests = 1): void {
  if (userAgent === null) {
    tally.noUserAgent += requests;
    return;
  }
  const seen = tally.userAgents.find((entry) => entry.value === userAgent);
  if (seen) seen.count += requests;
  else if (tally.userAgents.length < MAX_USER_AGENTS) tally.userAgents.push({ value: userAgent, count: requests });
  else tally.otherUserAgents += requests;
}

function toRow(tally: Tally): AggregatedAuditRow {
  const onlyOne = tally.userAgents.length === 1 && tally.otherUserAgents === 0 && tally.noUserAgent === 0;
  return {
    event: tally.event,
    session_id: tally.sessionId,
    user_id: tally.userId,
    ip: tally.source,
    // The column names a user agent only when it was the window's only one; details has them all.
    user_agent: onlyOne ? tally.userAgents[0].value : null,
    details: {
      count: tally.count,
      reasons: tally.reasons,
      first_at: new Date(tally.firstAt).toISOString(),
      last_at: new Date(tally.lastAt).toISOString(),
      ...(tally.userAgents.length > 0 ? { user_agents: tally.userAgents } : {}),
      ...(tally.otherUserAgents > 0 ? { other_user_agents: tally.otherUserAgents } : {}),
      ...(tally.noUserAgent > 0 ? { no_user_agent: tally.noUserAgent } : {}),
      ...(tally.origins.length > 0 ? { origins: tally.origins } : {}),
      ...(tally.otherOrigins > 0 ? { other_origins: tally.otherOrigins } : {}),
      ...(tally.folded !== undefined ? { folded: tally.folded } : {}),
    },
  };
}
