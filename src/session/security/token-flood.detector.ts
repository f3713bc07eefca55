import { Inject, Injectable, Logger } from '@nestjs/common';
import { SESSION_OPTIONS } from '../session.constants.js';
import type { ResolvedSessionOptions } from '../session.options.js';
import { clientIp, headerValue, type HttpRequestLike } from '../transport/http.js';
import { AggregatedAuditLog } from './aggregated-audit.js';
import { sourceOf } from './request-source.js';
import { SourceWindows } from './source-windows.js';

/**
 * Flood and guess detection. Each source (IPv4 address or IPv6 /64) may present `flood.limit`
 * unknown or malformed tokens per window; after that, every request of it that carries a
 * token is refused (429) before any database work until the window ends. Counters live in a
 * bounded LRU, per app instance. Every failure and refusal is tallied for the aggregated
 * `invalid_token` audit row (one per source and window), never written per request.
 */
@Injectable()
export class TokenFloodDetector {
  private readonly logger = new Logger('SessionFlood');
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly windows: SourceWindows;

  constructor(
    @Inject(SESSION_OPTIONS) options: ResolvedSessionOptions,
    private readonly audit: AggregatedAuditLog,
  ) {
    this.limit = options.flood.limit;
    this.windowMs = options.flood.windowMs;
    this.windows = new SourceWindows(this.windowMs, options.flood.maxSources);
  }

  /** Seconds until this request's source may present tokens again; 0 when it may now. */
  retryAfterSeconds(request: HttpRequestLike, now = Date.now()): number {
    if (this.limit === 0 || this.windows.size === 0) return 0;
    const source = sourceOf(clientIp(request));
    const window = this.windows.current(source, now);
    if (!window || window.count < this.limit) return 0;
    this.audit.record(
      { event: 'invalid_token', source, reason: 'blocked', userAgent: headerValue(request, 'user-agent') },
      now,
    );
    return Math.ceil((window.endsAt - now) / 1000);
  }

  /** A token that was malformed, or well-formed but matched no session. */
  recordInvalid(request: HttpRequestLike, kind: 'malformed' | 'unknown', now = Date.now()): void {
    const source = sourceOf(clientIp(request));
    if (this.windows.count(source, now).count === this.limit) {
      this.logger.warn(
        `${source} presented ${this.limit} unknown or malformed session tokens within ${this.windowMs} ms: refusing its tokens until the window ends`,
      );
    }
    this.audit.record(
      { event: 'invalid_token', source, reason: kind, userAgent: headerValue(request, 'user-agent') },
      now,
    );
  }
}
