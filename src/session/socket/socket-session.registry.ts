import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { attachSession, internalsOf, type ActiveSession } from '../active-session.js';
import { profileOf } from '../lifetime/lifetime.options.js';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { SessionStore } from '../store/session.store.js';
import { closeClient } from './socket-client.js';
import type { SocketCloseReason } from './socket-close.js';

/** Notices kept for sessions without sockets here; past that, pending handshakes re-read. */
const MAX_REMEMBERED = 1_000;
/** setTimeout's limit; a later deadline is re-read when this one fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One session's open sockets on this instance, and what we last knew of its row. */
interface Entry {
  readonly sessionId: string;
  readonly idleTimeoutMs: number;
  readonly sockets: Set<object>;
  idleExpiresAt: number; // database clock, epoch ms
  absoluteExpiresAt: number;
  /** performance.now() after which a socket's activity writes last_seen_at. */
  nextTouchAt: number;
  timer?: NodeJS.Timeout;
}

/** A row as socketSessionStates returns it. */
export interface SocketSessionState {
  id: string;
  revokedAt: Date | null;
  revokeReason: string | null;
  lastSeenAt: Date;
  idleExpiresAt: Date;
  absoluteExpiresAt: Date;
  dbNow: Date;
}

/**
 * The open sockets of this instance, by session. It closes every socket of a session that
 * ended: when NOTIFY names the session (any instance revoked or deleted it), when its idle or
 * absolute deadline comes (re-read first: activity elsewhere may have pushed the idle one
 * out), and, without NOTIFY, on a re-check every `sockets.recheckInterval`. Each check is one
 * batched read of the sessions concerned.
 */
@Injectable()
export class SocketSessionRegistry implements OnModuleDestroy {
  private readonly logger = new Logger('SessionSockets');
  private readonly entries = new Map<string, Entry>();
  private readonly entryOf = new WeakMap<object, Entry>();
  /** Sessions named by notices since the last read: one read for a burst (a revoke-all). */
  private readonly due = new Set<string>();
  private flushing = false;
  private recheckTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Notices so far, and the last one for sessions with no socket here yet (a handshake under way). */
  private notices = 0;
  private readonly noticedAt = new Map<string, number>();
  /** The notice at which noticedAt last overflowed (or an all-sessions notice came): older tickets re-read. */
  private everythingAt = 0;

  constructor(
    private readonly store: SessionStore,
    @Inject(SESSION_OPTIONS) private readonly options: ResolvedSessionOptions,
  ) {
    this.notified(false);
  }

  /** Open sockets on this instance (for tests and metrics). */
  get size(): number {
    let count = 0;
    for (const entry of this.entries.values()) count += entry.sockets.size;
    return count;
  }

  /** Taken before a handshake's check: register() then knows whether a notice came meanwhile. */
  ticket(): number {
    return this.notices;
  }

  /**
   * Tracks an accepted socket; the session (checked at the handshake) is attached to it for the
   * guard and @CurrentSession(). A notice for the session since `ticket` (it was revoked while
   * the handshake was being checked) makes it read again at once.
   */
  register(client: object, session: ActiveSession, ticket = this.notices): void {
    attachSession(client, session);
    const checkedAt = internalsOf(session)?.checkedAt ?? Date.now();
    let entry = this.entries.get(session.id);
    if (!entry) {
      const idleTimeoutMs = profileOf(this.options.lifetimes, session.lifetime).idleTimeoutMs;
      // The session was seen at lastSeenAt: its next touch is due a touch interval later.
      const touchIn = session.lastSeenAt.getTime() + this.options.touchIntervalMs - checkedAt;
      entry = {
        sessionId: session.id,
        idleTimeoutMs,
        sockets: new Set(),
        idleExpiresAt: session.idleExpiresAt.getTime(),
        absoluteExpiresAt: session.absoluteExpiresAt.getTime(),
        nextTouchAt: performance.now() + touchIn,
      };
      this.entries.set(session.id, entry);
      this.schedule(entry, checkedAt);
    }
    entry.sockets.add(client);
    this.entryOf.set(client, entry);
    if ((this.noticedAt.get(session.id) ?? this.everythingAt) > ticket) this.sessionChanged(session.id);
  }

  /** The socket went away (closed by either side). */
  unregister(client: object): void {
    const entry = this.entryOf.get(client);
    if (!entry) return;
    this.entryOf.delete(client);
    attachSession(client, null);
    entry.sockets.delete(client);
    if (entry.sockets.size === 0) this.forget(entry);
  }

  /** True while the socket's session is, as far as this instance knows, live. */
  isLive(client: object): boolean {
    const entry = this.entryOf.get(client);
    return entry !== undefined && this.entries.get(entry.sessionId) === entry;
  }

  /**
   * A message on a guarded handler: the session was active. Past the touch interval, one
   * conditional UPDATE (touchIfStale, as requests do) moves the idle deadline out.
   */
  async activity(client: object): Promise<void> {
    const entry = this.entryOf.get(client);
    if (!entry || performance.now() < entry.nextTouchAt) return;
    entry.nextTouchAt = performance.now() + this.options.touchIntervalMs;
    const touched = await this.store.touchIfStale(entry.sessionId, entry.idleTimeoutMs, this.options.touchIntervalMs);
    if (touched) entry.idleExpiresAt = touched.idleExpiresAt.getTime();
  }

  /** NOTIFY named this session (from SessionInvalidationListener). */
  sessionChanged(sessionId: string): void {
    this.notices++;
    if (!this.entries.has(sessionId)) return this.remember(sessionId);
    this.due.add(sessionId);
    void this.flush();
  }

  /** A notice for every session (the purge), or notices may have been lost: re-read them all. */
  allChanged(): void {
    this.everythingAt = ++this.notices;
    this.noticedAt.clear();
    for (const id of this.entries.keys()) this.due.add(id);
    void this.flush();
  }

  /**
   * Whether NOTIFY reaches this instance now (told by the listener). While it does not, the
   * sessions are re-read every `sockets.recheckInterval`; when it comes back, all of them once.
   */
  notified(listening: boolean): void {
    if (this.stopped) return;
    if (listening && this.options.cache.notify) {
      clearInterval(this.recheckTimer);
      this.recheckTimer = undefined;
      return this.allChanged();
    }
    // Told again while already re-checking (each missed probe, each failed reconnect): keep the timer.
    if (!this.options.sockets.enabled || this.recheckTimer) return;
    this.recheckTimer = setInterval(() => this.allChanged(), this.options.sockets.recheckIntervalMs);
    this.recheckTimer.unref();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearInterval(this.recheckTimer);
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
  }

  /** A notice for a session without sockets here, kept a while for handshakes under way (bounded). */
  private remember(sessionId: string): void {
    this.noticedAt.delete(sessionId); // re-inserted last: the Map stays in notice order
    this.noticedAt.set(sessionId, this.notices);
    if (this.noticedAt.size <= MAX_REMEMBERED) return;
    // Too many to keep: handshakes under way now re-read their session whatever it was.
    this.everythingAt = this.notices;
    this.noticedAt.clear();
  }

  /** One read for every session named since the last one; more notices meanwhile wait for the next. */
  private async flush(): Promise<void> {
    if (this.flushing || this.due.size === 0) return;
    this.flushing = true;
    const ids = [...this.due];
    this.due.clear();
    try {
      const states = new Map((await this.store.socketSessionStates(ids)).map((s) => [s.id, s]));
      for (const id of ids) {
        const entry = this.entries.get(id);
        if (entry) this.judge(entry, states.get(id));
      }
    } catch (error) {
      // The store logged it; the sessions are read again on the next notice, deadline or re-check.
      this.logger.warn(`could not re-read ${ids.length} socket session(s): ${(error as Error).message}`);
    } finally {
      this.flushing = false;
      if (this.due.size > 0) void this.flush();
    }
  }

  /** Closes the session's sockets if it ended, else reschedules its deadline on the new times. */
  private judge(entry: Entry, state: SocketSessionState | undefined): void {
    const reason = endReasonOf(entry, state);
    if (reason) return this.close(entry, reason);
    const now = state!.dbNow.getTime();
    entry.idleExpiresAt = state!.idleExpiresAt.getTime();
    entry.absoluteExpiresAt = state!.absoluteExpiresAt.getTime();
    // Activity elsewhere (or none) decides when this instance's next touch is due.
    entry.nextTouchAt = performance.now() + state!.lastSeenAt.getTime() + this.options.touchIntervalMs - now;
    this.schedule(entry, now);
  }

  private close(entry: Entry, reason: SocketCloseReason): void {
    this.forget(entry);
    for (const client of entry.sockets) {
      this.entryOf.delete(client);
      attachSession(client, null);
      try {
        closeClient(client, reason);
      } catch (error) {
        this.logger.warn(`could not close a socket of an ended session: ${(error as Error).message}`);
      }
    }
    entry.sockets.clear();
  }

  /** A timer at the earlier deadline (`now`: the database clock when the times were read). */
  private schedule(entry: Entry, now: number): void {
    clearTimeout(entry.timer);
    const delay = Math.min(Math.max(Math.min(entry.idleExpiresAt, entry.absoluteExpiresAt) - now, 0), MAX_TIMER_MS);
    entry.timer = setTimeout(() => this.sessionChanged(entry.sessionId), delay);
    entry.timer.unref();
  }

  private forget(entry: Entry): void {
    clearTimeout(entry.timer);
    if (this.entries.get(entry.sessionId) === entry) this.entries.delete(entry.sessionId);
  }
}

/** Why the session ended, or undefined while it is live (decided on the database clock). */
function endReasonOf(entry: Entry, state: SocketSessionState | undefined): SocketCloseReason | undefined {
  if (!state) {
    // Deleted: a logout, or an expiry a request or the purge noticed first (its deadline had passed).
    const now = Date.now();
    if (now >= entry.absoluteExpiresAt) return 'absolute_timeout';
    if (now >= entry.idleExpiresAt) return 'idle_timeout';
    return 'logout';
  }
  if (state.revokedAt) return state.revokeReason === 'token_reuse' ? 'token_reuse_detected' : 'revoked';
  const now = state.dbNow.getTime();
  if (now >= state.absoluteExpiresAt.getTime()) return 'absolute_timeout';
  if (now >= state.idleExpiresAt.getTime()) return 'idle_timeout';
  return undefined;
}
