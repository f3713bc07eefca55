import type { Pool, QueryResultRow } from 'pg';
import { ModuleKeyStore } from '../keys/module-key.store.js';
import { storeQuery } from '../store/bounded-wait.js';
import type { Statement } from '../store/statement.js';
import type { AuditEvent } from './audit-event.js';
import { toAuditRecord, type SessionAuditRecord } from './audit-record.js';
import { AUDIT_SQL } from './audit.sql.js';
import { parseIpFilter } from './ip-filter.js';
import type { AuditPosition } from './audit-cursor.js';
import type { SummaryBucket } from './audit-query.dto.js';

// date_bin is about twice as fast as a zoned date_trunc, and aligned on UTC midnight the same.
const BUCKET_INTERVALS: Record<SummaryBucket, string> = { minute: '1 minute', hour: '1 hour', day: '1 day' };

/** Validated filters (see AuditQueryDto). */
export interface AuditFilter {
  userId?: string;
  sessionId?: string;
  actorId?: string;
  events?: AuditEvent[];
  /** An address or a CIDR network (see ip-filter.ts). */
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

/** The parameters of AUDIT_SQL.page for one page of `filter`, after `position` (exported for the plan tests). */
export function auditPageValues(filter: AuditFilter, position: AuditPosition | undefined, limit: number): unknown[] {
  const events = filter.events && [...new Set(filter.events)];
  const ip = filter.ip === undefined ? undefined : parseIpFilter(filter.ip);
  if (filter.ip !== undefined && !ip) throw new TypeError(`not an address or network: ${filter.ip}`);
  // An IPv6 address also matches the flood rows of its /64 (security/request-source.ts).
  const network = ip?.prefix !== undefined ? ip.text : ip?.family === 6 ? parseIpFilter(`${ip.text}/64`)!.text : null;
  return [
    filter.userId ?? null,
    filter.sessionId ?? null,
    filter.actorId ?? null,
    events?.length === 1 ? events[0] : null,
    events !== undefined && events.length !== 1 ? events : null,
    ip?.family === 4 && ip.prefix === undefined ? ip.text : null,
    filter.from ?? null,
    filter.to ?? null,
    position?.occurredUs ?? null,
    position?.id ?? null,
    limit,
    network,
    ip?.family === 6 && ip.prefix === undefined ? ip.text : null,
  ];
}

/** Reads the audit log for admins, on the module's pool (the session statements write it, see store/session.sql.ts). */
export class SessionAuditStore {
  constructor(
    private readonly pool: Pool,
    private readonly queryTimeoutMs = 10_000,
    private readonly keys = new ModuleKeyStore(pool, queryTimeoutMs),
  ) {}

  /** The MAC key of the cursors (see audit-cursor.ts): the same on every instance and across restarts. */
  cursorKey(): Promise<Buffer> {
    return this.keys.key('audit-cursor');
  }

  async query(
    filter: AuditFilter,
    position: AuditPosition | undefined,
    limit: number,
  ): Promise<PositionedAuditRecord[]> {
    const rows = await this.run(AUDIT_SQL.page, auditPageValues(filter, position, limit));
    return rows.map((row) => ({ ...toAuditRecord(row), position: { occurredUs: row.occurred_us, id: row.id } }));
  }

  async summary(from: Date, to: Date, bucket: SummaryBucket): Promise<SummaryRow[]> {
    const rows = await this.run(AUDIT_SQL.summary, [from, to, BUCKET_INTERVALS[bucket]]);
    return rows.map((row) => ({ bucket: row.bucket, event: row.event, count: row.count }));
  }

  /** Bounded like the session statements (the wait for a connection included): an admin query never hangs either. */
  private run(statement: Statement, values: unknown[] | undefined): Promise<QueryResultRow[]> {
    return storeQuery(this.pool, statement, values, this.queryTimeoutMs);
  }
}
