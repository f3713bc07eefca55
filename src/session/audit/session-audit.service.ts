import { BadRequestException, Injectable } from '@nestjs/common';
import type { AuditEvent } from './audit-event.js';
import { decodeCursor, encodeCursor, type AuditPosition } from './audit-cursor.js';
import {
  AuditQueryDto,
  AuditSummaryDto,
  DEFAULT_AUDIT_PAGE_SIZE,
  validateDto,
  type AuditQueryInput,
  type AuditSummaryInput,
  type SummaryBucket,
} from './audit-query.dto.js';
import type { SessionAuditRecord } from './audit-record.js';
import { SessionAuditStore, type AuditFilter } from './audit.store.js';

export interface AuditPage {
  /** Newest first. */
  items: SessionAuditRecord[];
  /** Pass as `cursor` (with the same filters) for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface AuditSummary {
  from: Date;
  to: Date;
  bucket: SummaryBucket;
  /** Buckets that had events, oldest first (start of the bucket, UTC). */
  buckets: Array<{ start: Date; counts: Partial<Record<AuditEvent, number>> }>;
  totals: Partial<Record<AuditEvent, number>>;
}

/**
 * Admin queries over `session_audit_log`: "every event for user 42 last week", "all
 * token-reuse alerts today". Inputs are validated here as well as by any ValidationPipe, so
 * programmatic callers get the same 400s as HTTP ones.
 */
@Injectable()
export class SessionAuditService {
  constructor(private readonly store: SessionAuditStore) {}

  /** One page, newest first. Keyset-paginated on (occurred_at, id): stable while rows are added. */
  async query(input: AuditQueryInput | AuditQueryDto = {}): Promise<AuditPage> {
    const dto = validateDto(AuditQueryDto, input);
    const filter: AuditFilter = {
      userId: dto.userId,
      sessionId: dto.sessionId?.toLowerCase(),
      actorId: dto.actorId,
      events: dto.events && [...new Set(dto.events)].sort(),
      ip: dto.ip,
      from: dto.from,
      to: dto.to,
    };
    const key = filterKey(filter);
    const macKey = await this.store.cursorKey();
    let position: AuditPosition | undefined;
    if (dto.cursor !== undefined) {
      const decoded = decodeCursor(dto.cursor, key, macKey);
      if ('error' in decoded)
        throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: [decoded.error] });
      position = decoded;
    }
    const limit = dto.limit ?? DEFAULT_AUDIT_PAGE_SIZE;
    // One row more than asked tells whether another page exists, without a COUNT.
    const rows = await this.store.query(filter, position, limit + 1);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(({ position: _, ...record }) => record),
      nextCursor: rows.length > limit && last ? encodeCursor(last.position, key, macKey) : null,
    };
  }

  /** Counts per event per minute, hour or day over [from, to), for dashboards and alerting. */
  async summary(input: AuditSummaryInput | AuditSummaryDto): Promise<AuditSummary> {
    const dto = validateDto(AuditSummaryDto, input);
    const rows = await this.store.summary(dto.from, dto.to, dto.bucket);
    const buckets = new Map<number, AuditSummary['buckets'][number]>();
    const totals: AuditSummary['totals'] = {};
    for (const row of rows) {
      const start = row.bucket.getTime();
      if (!buckets.has(start)) buckets.set(start, { start: row.bucket, counts: {} });
      buckets.get(start)!.counts[row.event] = row.count;
      totals[row.event] = (totals[row.event] ?? 0) + row.count;
    }
    return { from: dto.from, to: dto.to, bucket: dto.bucket, buckets: [...buckets.values()], totals };
  }
}

/** The filters in a canonical form, so a cursor is tied to the query that produced it. */
function filterKey(filter: AuditFilter): string {
  return JSON.stringify([
    filter.userId,
    filter.sessionId,
    filter.actorId,
    filter.events,
    filter.ip,
    filter.from?.toISOString(),
    filter.to?.toISOString(),
  ]);
}
