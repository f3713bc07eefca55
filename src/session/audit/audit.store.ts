import type { Pool, QueryConfig, QueryResultRow } from 'pg';
import { boundedQuery } from '../store/bounded-wait.js';
import { isConnectionError, StoreUnavailableError } from '../store/session.store.js';
import type { AuditEvent } from './audit-event.js';
import { AUDIT_RECORD_COLUMNS, toAuditRecord, type SessionAuditRecord } from './audit-record.js';
import type { AuditPosition } from './audit-cursor.js';
import type { SummaryBucket } from './audit-query.dto.js';

/**
 * Every statement the admin queries send, in one place. A query is `select`, then the
 * `where` fragments of the filters present (in this fixed order, joined with AND), then
 * `page`. Fragments hold only `$?` placeholders, numbered as they are bound: values never
 * become SQL text. Each fragment matches an index of the migration, all of them sorted
 * (occurred_at DESC, id DESC), so every combination reads newest-first from an index and
 * stops at the page size (test/integration/audit-query-plans.spec.ts proves it on 1M rows).
 */
export const AUDIT_SQL = {
  select: `SELECT ${AUDIT_RECORD_COLUMNS}, (extract(epoch FROM occurred_at) * 1000000)::int8::text AS occurred_us
    FROM session_audit_log l`,
  where: {
    userId: `user_id = $?`,
    sessionId: `session_id = $?::uuid`,
    actorId: `actor_id = $?`,
    // One event is an equality, so the (event, occurred_at, id) index is read in order and
    // stops at the page size; a list cannot be read in order from it.
    event: `event = $?`,
    events: `event = ANY($?::text[])`,
    ip: `ip = $?`,
    from: `occurred_at >= $?`,
    to: `occurred_at < $?`,
    /** Keyset: strictly after the previous page's last row, in (occurred_at, id) order. */
    before: `(occurred_at, id) < (timestamptz 'epoch' + $?::int8 * interval '1 microsecond', $?::int8)`,
  },
  // Qualified: a bare `id` here would mean the text output column, not the bigint.
  page: `ORDER BY l.occurred_at DESC, l.id DESC LIMIT $?`,

  /** Counts per bucket and event over [from, to); buckets start at UTC minute/hour/day boundaries. */
  summary: `
    SELECT date_bin($3::interval, occurred_at, timestamptz '2000-01-01 00:00:00+00') AS bucket, event, count(*)::int AS count
    FROM session_audit_log
    WHERE occurred_at >= $1 AND occurred_at < $2
    GROUP BY 1, 2
    ORDER BY 1, 2`,
} as const;

// date_bin is about twice as fast as a zoned date_trunc, and aligned on UTC midnight the same.
const BUCKET_INTERVALS: Record<SummaryBucket, string> = { minute: '1 minute', hour: '1 hour', day: '1 day' };

/** Validated filters (see AuditQueryDto). */
export interface AuditFilter {
  userId?: string;
  sessionId?: string;
  actorId?: string;
  events?: AuditEvent[];
  ip?: string;
  from?: Date;
  to?: Date;
}

export interface PositionedAuditRecord extends SessionAuditRecord {
  position: AuditPosition;
}

export interface SummaryRow {
  bucket: Date;
  event: AuditEvent;
  count: number;
}

/** The statement for one page of `filter`, after `position` (exported for the plan tests). */
export function buildAuditQuery(filter: AuditFilter, position: AuditPosition | undefined, limit: number): QueryConfig {
  const values: unknown[] = [];
  const bind = (fragment: string, ...args: unknown[]) =>
    fragment.replace(/\$\?/g, () => `$${values.push(args.shift())}`);
  const conditions: string[] = [];
  const w = AUDIT_SQL.where;
  if (filter.userId !== undefined) conditions.push(bind(w.userId, filter.userId));
  if (filter.sessionId !== undefined) conditions.push(bind(w.sessionId, filter.sessionId));
  if (filter.actorId !== undefined) conditions.push(bind(w.actorId, filter.actorId));
  const events = filter.events && [...new Set(filter.events)];
  if (events?.length === 1) conditions.push(bind(w.event, events[0]));
  else if (events !== undefined) conditions.push(bind(w.events, events));
  if (filter.ip !== undefined) conditions.push(bind(w.ip, filter.ip));
  if (filter.from !== undefined) conditions.push(bind(w.from, filter.from));
  if (filter.to !== undefined) conditions.push(bind(w.to, filter.to));
  if (position !== undefined) conditions.push(bind(w.before, position.occurredUs, position.id));
  const where = conditions.length > 0 ? `\n    WHERE ${conditions.join(' AND ')}` : '';
  return { text: `${AUDIT_SQL.select}${where}\n    ${bind(AUDIT_SQL.page, limit)}`, values };
}

/** Reads the audit log for admins, on the module's pool (the store writes it, see session.store.ts). */
export class SessionAuditStore {
  constructor(
    private readonly pool: Pool,
    private readonly queryTimeoutMs = 10_000,
  ) {}

  async query(
    filter: AuditFilter,
    position: AuditPosition | undefined,
    limit: number,
  ): Promise<PositionedAuditRecord[]> {
    const rows = await this.run(buildAuditQuery(filter, position, limit));
    return rows.map((row) => ({ ...toAuditRecord(row), position: { occurredUs: row.occurred_us, id: row.id } }));
  }

  async summary(from: Date, to: Date, bucket: SummaryBucket): Promise<SummaryRow[]> {
    const rows = await this.run({ text: AUDIT_SQL.summary, values: [from, to, BUCKET_INTERVALS[bucket]] });
    return rows.map((row) => ({ bucket: row.bucket, event: row.event, count: row.count }));
  }

  /** Bounded like the session statements (the wait for a connection included): an admin query never hangs either. */
  private async run(query: QueryConfig): Promise<QueryResultRow[]> {
    try {
      return await boundedQuery(
        this.pool,
        query,
        this.queryTimeoutMs,
        () => new StoreUnavailableError(`no answer within ${this.queryTimeoutMs} ms`),
      );
    } catch (error) {
      if (isConnectionError(error)) throw new StoreUnavailableError((error as Error).message, { cause: error });
      throw error;
    }
  }
}
