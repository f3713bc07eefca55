import { HttpException, HttpStatus, Inject, Injectable, Logger } from '@nestjs/common';
import { AggregatedAuditLog } from '../security/aggregated-audit.js';
import { sourceOf } from '../security/request-source.js';
import { SourceWindows } from '../security/source-windows.js';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { clientIp, headerValue, setHeader, type HttpRequestLike, type HttpResponseLike } from '../transport/http.js';

/**
 * Each source (IPv4 address or IPv6 /64, as for the token-flood limit) may start
 * `guests.createLimit` guest sessions per `guests.createWindow`; after that its first writes
 * are refused (429) before any SQL until the window ends, so one client cannot fill the table
 * with rows. Counters live in a bounded LRU (`flood.maxSources`), per app instance. Refusals
 * are audited as one aggregated `guest_limited` row per source and window.
 */
@Injectable()
export class GuestCreationLimiter {
  private readonly logger = new Logger('SessionGuests');
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly windows: SourceWindows;

  constructor(
    @Inject(SESSION_OPTIONS) options: ResolvedSessionOptions,
    private readonly audit: AggregatedAuditLog,
  ) {
    this.limit = options.guests.createLimit;
    this.windowMs = options.guests.createWindowMs;
    this.windows = new SourceWindows(this.windowMs, options.flood.maxSources);
  }

  /** Counts a guest session this request is about to start, or refuses it: 429 with Retry-After. */
  acquireOrRefuse(request: HttpRequestLike, response: HttpResponseLike): void {
    const retryAfter = this.acquire(request);
    if (retryAfter === 0) return;
    setHeader(response, 'Retry-After', String(retryAfter));
    throw new HttpException(
      {
        statusCode: 429,
        error: 'Too Many Requests',
        reason: 'too_many_guest_sessions',
        message: 'Too many new sessions from this address: try again later',
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }

  /** Counts a guest session this request is about to start: 0 when it may, else the seconds until it may. */
  acquire(request: HttpRequestLike, now = Date.now()): number {
    if (this.limit === 0) return 0;
    const source = sourceOf(clientIp(request));
    const { count, endsAt } = this.windows.count(source, now);
    if (count <= this.limit) return 0;
    if (count === this.limit + 1)
      this.logger.warn(
        `${source} started ${this.limit} guest sessions within ${this.windowMs} ms: refusing more until the window ends`,
      );
    this.audit.record(
      { event: 'guest_limited', source, reason: 'blocked', userAgent: headerValue(request, 'user-agent') },
      now,
    );
    return Math.max(1, Math.ceil((endsAt - now) / 1000));
  }
}
