import type { Statement } from '../store/statement.js';

/**
 * Every statement the admin queries send (the audit rows themselves are written by the
 * session statements, store/session.sql.ts, and the purge's, purge/purge.sql.ts).
 */
export const AUDIT_SQL = {
  /**
   * One page of the audit log, newest first. Each filter is a parameter that is either null
   * (no filter) or a value: $1 user, $2 session, $3 actor, $4 one event, $5 several events, $6
   * ip, $7 from (inclusive), $8 to (exclusive), $9 and $10 the keyset cursor (the previous
   * page's last row, in (occurred_at, id) order), $11 the page size. The ip filter compares
   * session_audit_inet(ip) (see migration IndexAuditLogByNetwork1796515200001): $6 one IPv4
   * address; $12 a network, every address or network within it; an IPv6 address is $13 with
   * its /64 in $12, matching the address and the aggregated row of its /64. The statement is never
   * prepared, so Postgres plans it for the values given: `NULL IS NULL OR ...` folds away
   * and every combination reads newest-first from the index matching the filters present,
   * all sorted (occurred_at DESC, id DESC), and stops at the page size (a network, $12, is a
   * range of the inet index instead: what it finds is sorted, unless reading in time order is cheaper)
   * (test/integration/audit-query-plans.spec.ts proves it on 1M rows). One event is an
   * equality ($4), so the (event, occurred_at, id) index is read in order; a list ($5) cannot be.
   */
  page: {
    name: 'page',
    text: `
    SELECT id::text AS id, occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details,
           (extract(epoch FROM occurred_at) * 1000000)::int8::text AS occurred_us
    FROM session_audit_log l
    WHERE ($1::text IS NULL OR user_id = $1)
      AND ($2::uuid IS NULL OR session_id = $2)
      AND ($3::text IS NULL OR actor_id = $3)
      AND ($4::text IS NULL OR event = $4)
      AND ($5::text[] IS NULL OR event = ANY($5))
      AND ($6::inet IS NULL OR session_audit_inet(ip) = $6)
      AND ($12::inet IS NULL OR session_audit_inet(ip) <<= $12)
      AND ($13::inet IS NULL OR session_audit_inet(ip) IN ($13, $12))
      AND ($7::timestamptz IS NULL OR occurred_at >= $7)
      AND ($8::timestamptz IS NULL OR occurred_at < $8)
      AND ($9::int8 IS NULL OR (occurred_at, id) < (timestamptz 'epoch' + $9 * interval '1 microsecond', $10::int8))
    ORDER BY l.occurred_at DESC, l.id DESC
    LIMIT $11`,
  },

  /** Counts per bucket ($3) and event over [$1, $2); buckets start at UTC minute/hour/day boundaries. */
  summary: {
    name: 'summary',
    text: `
    SELECT date_bin($3::interval, occurred_at, timestamptz '2000-01-01 00:00:00+00') AS bucket, event, count(*)::int AS count
    FROM session_audit_log
    WHERE occurred_at >= $1 AND occurred_at < $2
    GROUP BY 1, 2
    ORDER BY 1, 2`,
  },
} as const satisfies Record<string, Statement>;
