import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import type { AuditQueryInput } from '../../src/session/audit/audit-query.dto.js';
import { AUDIT_SQL } from '../../src/session/audit/audit.sql.js';
import { auditPageValues, SessionAuditStore, type AuditFilter } from '../../src/session/audit/audit.store.js';
import { SessionAuditService } from '../../src/session/audit/session-audit.service.js';
import { AuditPartitions } from '../../src/session/purge/audit-partitions.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const ROWS = 1_000_000;

/**
 * One million audit rows over 90 days: 20,000 users (one "heavy" account with 5% of all
 * rows), ~200,000 sessions, a few admins, ~60,000 addresses (a tenth IPv6, with the /64
 * networks of aggregated rows), events weighted as in real
 * traffic (rotations common, token reuse rare). Times rise with ids, as appends do.
 */
const FILL = `
  INSERT INTO session_audit_log (occurred_at, event, session_id, user_id, actor_id, ip, user_agent, details)
  SELECT now() - interval '90 days' + g * (interval '90 days' / ${ROWS}),
         e.event,
         CASE WHEN e.event = 'revoked_all' THEN NULL ELSE md5('s' || (g / 5))::uuid END,
         u.user_id,
         CASE WHEN e.event IN ('created', 'logout', 'revoked', 'revoked_all')
              THEN CASE WHEN g % 97 = 0 THEN 'admin-' || (g % 7) ELSE u.user_id END END,
         CASE WHEN e.event = 'purged' THEN NULL
              WHEN g % 10 <> 7 THEN '10.' || ((g / 5) % 250) || '.' || ((g / 1250) % 250) || '.' || (g % 4)
              -- a tenth IPv6: hosts, and the /64 networks flood rows record (as sourceOf writes them)
              ELSE '2001:db8:' || to_hex((g / 1250) % 250) || ':' || to_hex(g % 3)
                   || CASE WHEN e.event = 'invalid_token' THEN '::/64' ELSE '::' || to_hex((g / 10) % 4 + 1) END END,
         'Mozilla/5.0 (X11; Linux x86_64) bench',
         '{}'::jsonb
  FROM generate_series(1, ${ROWS}) g
  CROSS JOIN LATERAL (SELECT CASE WHEN g % 20 = 0 THEN 'user-heavy' ELSE 'user-' || ((g / 5) % 20000) END AS user_id) u
  CROSS JOIN LATERAL (SELECT CASE
    WHEN g % 1000 = 0 THEN 'token_reuse_detected'
    WHEN g % 100 < 20 THEN 'created'
    WHEN g % 100 < 55 THEN 'rotated'
    WHEN g % 100 < 65 THEN 'logout'
    WHEN g % 100 < 75 THEN 'expired_idle'
    WHEN g % 100 < 80 THEN 'expired_absolute'
    WHEN g % 100 < 86 THEN 'revoked'
    WHEN g % 100 < 87 THEN 'revoked_all'
    WHEN g % 100 < 95 THEN 'purged'
    ELSE 'invalid_token' END AS event) e`;

type Kind = [name: string, filter: AuditQueryInput, page2?: boolean];

describe(`audit queries on ${ROWS.toLocaleString('en')} rows`, () => {
  let db: TestDatabase;
  let audit: SessionAuditService;
  let store: SessionAuditStore;
  const DAY = 86_400_000;
  let now: number;
  let sessionId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    store = new SessionAuditStore(db.pool);
    audit = new SessionAuditService(store);
    // Weekly partitions for the 91 days the rows span, made as the purge makes them: it gives each
    // week found in the DEFAULT partition its own (one marker row per day, deleted again).
    await db.pool.query(
      `INSERT INTO session_audit_log (event, occurred_at) SELECT 'created', now() - g * interval '1 day' FROM generate_series(1, 91) g`,
    );
    const client = await db.pool.connect();
    try {
      expect((await new AuditPartitions(client).createAhead(1, null)).rowsMoved).toBeGreaterThan(84); // all but this week's
    } finally {
      client.release();
    }
    await db.pool.query('TRUNCATE session_audit_log');
    // Bulk load without the indexes, then build them from the migrations' own definitions:
    // several times faster than maintaining six indexes row by row, and the same end state.
    const { rows: indexes } = await db.pool.query(`
      SELECT indexname, replace(indexdef, ' ON ONLY ', ' ON ') AS indexdef FROM pg_indexes
      WHERE tablename = 'session_audit_log' AND indexname <> 'session_audit_log_pkey'`);
    expect(indexes.length).toBeGreaterThanOrEqual(6);
    for (const { indexname } of indexes) await db.pool.query(`DROP INDEX ${indexname}`);
    // A throwaway database: skip the WAL (a partitioned table has no storage of its own; its partitions do).
    for (const name of await partitionNames()) await db.pool.query(`ALTER TABLE ${name} SET UNLOGGED`);
    await db.pool.query(FILL);
    const builder = await db.pool.connect();
    try {
      await builder.query(`SET maintenance_work_mem = '256MB'`);
      for (const { indexdef } of indexes) await builder.query(indexdef);
    } finally {
      builder.release();
    }
    await db.pool.query('VACUUM (ANALYZE) session_audit_log'); // what autovacuum does to an append-only table
    now = (await db.pool.query('SELECT now() AS now')).rows[0].now.getTime();
    sessionId = (await db.pool.query(`SELECT md5('s' || 123457)::uuid AS id`)).rows[0].id;
  }, 180_000);
  afterAll(async () => db?.drop());

  const partitionNames = async (): Promise<string[]> =>
    (
      await db.pool.query(`SELECT inhrelid::regclass::text AS name FROM pg_inherits
                           WHERE inhparent = 'session_audit_log'::regclass ORDER BY 1`)
    ).rows.map((r) => r.name);

  /** Partitions with no pages (next week's, DEFAULT): a Seq Scan of one reads nothing. */
  const emptyPartitions = async (): Promise<Set<string>> => {
    const { rows } = await db.pool.query(`
      SELECT inhrelid::regclass::text AS name FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
      WHERE inhparent = 'session_audit_log'::regclass AND c.relpages = 0`);
    return new Set(rows.map((r) => r.name));
  };

  /** The partitions holding rows that a plan reads by a Seq Scan. */
  const seqScansOfRows = async (text: string): Promise<string[]> => {
    const empty = await emptyPartitions();
    return [...text.matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1]).filter((name) => !empty.has(name));
  };

  /** The page query's plan reads by index: no Seq Scan of a partition with rows. */
  const expectIndexed = async (filter: AuditFilter, position?: { occurredUs: string; id: string }) => {
    const text = await plan(filter, position);
    expect({ filter, position, seqScans: await seqScansOfRows(text) }).toEqual({ filter, position, seqScans: [] });
    expect(text).toMatch(/using session_audit_log_\w+_idx|on session_audit_log_\w+_idx/);
  };

  const plan = async (filter: AuditFilter, position?: { occurredUs: string; id: string }): Promise<string> => {
    const values = auditPageValues(filter, position, 51);
    const { rows } = await db.pool.query({ text: `EXPLAIN ${AUDIT_SQL.page.text}`, values });
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  };

  it('serves every combination of the seven filters, with and without a cursor, from an index (no Seq Scan of a partition with rows)', async () => {
    const middle = { occurredUs: String((now - 45 * DAY) * 1000), id: String(ROWS / 2) };
    const variants: Array<Record<keyof AuditFilter, unknown>> = [
      // a typical user and common events ...
      {
        userId: 'user-42',
        sessionId,
        actorId: 'admin-3',
        events: ['created', 'revoked'],
        ip: '10.42.3.1',
        from: new Date(now - 30 * DAY),
        to: new Date(now - DAY),
      },
      // ... and a heavy account with a rare event over a short window
      {
        userId: 'user-heavy',
        sessionId,
        actorId: 'user-heavy',
        events: ['token_reuse_detected'],
        ip: '10.7.7.2',
        from: new Date(now - 2 * DAY),
        to: new Date(now - DAY),
      },
    ];
    const names = Object.keys(variants[0]) as Array<keyof AuditFilter>;
    // Next week's, DEFAULT, and the oldest week when the rows start after its end.
    expect([2, 3]).toContain((await emptyPartitions()).size);
    let checked = 0;
    for (const values of variants) {
      for (let mask = 0; mask < 1 << names.length; mask++) {
        const filter = Object.fromEntries(
          names.filter((_, i) => mask & (1 << i)).map((n) => [n, values[n]]),
        ) as AuditFilter;
        for (const position of [undefined, middle]) {
          await expectIndexed(filter, position);
          checked++;
        }
      }
    }
    expect(checked).toBe(2 * 128 * 2);
  }, 60_000);

  it('serves the network and IPv6 forms of the ip filter from an index too, with every other filter', async () => {
    const middle = { occurredUs: String((now - 45 * DAY) * 1000), id: String(ROWS / 2) };
    const others = {
      userId: 'user-42',
      sessionId,
      actorId: 'admin-3',
      events: ['created', 'revoked'],
      from: new Date(now - 30 * DAY),
      to: new Date(now - DAY),
    } as const;
    const names = Object.keys(others) as Array<keyof typeof others>;
    let checked = 0;
    for (const ip of ['10.42.0.0/16', '10.0.0.0/8', '2001:db8:2a:1::2', '2001:db8:2a:1::/64', '2001:db8:2a::/48']) {
      for (let mask = 0; mask < 1 << names.length; mask++) {
        const filter: AuditFilter = {
          ip,
          ...Object.fromEntries(names.filter((_, i) => mask & (1 << i)).map((n) => [n, others[n]])),
        };
        for (const position of [undefined, middle]) {
          await expectIndexed(filter, position);
          checked++;
        }
      }
    }
    expect(checked).toBe(5 * 64 * 2);
    // Alone, a rare network is a range of the inet index; an IPv4 address an equality read in time order.
    expect(await plan({ ip: '2001:db8:2a::/48' })).toMatch(
      /Index Cond: \(\(session_audit_inet\(ip\) >= '2001:db8:2a::\/48'::inet\) AND \(session_audit_inet\(ip\) <= '2001:db8:2a:ffff:ffff:ffff:ffff:ffff'::inet\)\)/,
    );
    expect(await plan({ ip: '10.42.3.1' })).toMatch(
      /Index Scan using session_audit_log_\w*inet\w*_idx[^\n]*\n\s+Index Cond: \(session_audit_inet\(ip\) = '10\.42\.3\.1'::inet\)/,
    );
  }, 60_000);

  it('reads only the weekly partitions a time bound covers (pruned when planned); without a bound, every partition by index', async () => {
    const all = await partitionNames();
    const scanned = (text: string) =>
      [...new Set([...text.matchAll(/ on (session_audit_log_(?:\d{8}|default))\b/g)].map((m) => m[1]))].sort();
    /** The partition of the UTC week (from Monday) holding instant t. */
    const weekOf = (t: number) => {
      const day = new Date(t);
      const monday =
        Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate()) - ((day.getUTCDay() + 6) % 7) * DAY;
      return `session_audit_log_${new Date(monday).toISOString().slice(0, 10).replaceAll('-', '')}`;
    };
    /** The weekly partitions overlapping [from, to). */
    const weeks = (from: number, to: number) => {
      const names = new Set<string>();
      for (let t = from; t < to; t += DAY) names.add(weekOf(t));
      names.add(weekOf(to - 1));
      return [...names].sort();
    };
    const filters: AuditFilter[] = [
      {},
      { userId: 'user-42' },
      { userId: 'user-heavy', events: ['token_reuse_detected'] },
      { sessionId },
      { actorId: 'admin-3', events: ['revoked', 'revoked_all'] },
      { ip: '10.42.3.1' },
    ];
    let checked = 0;
    for (const filter of filters) {
      // Both bounds: exactly the weeks they cover; DEFAULT (rows outside every partition) is pruned too.
      for (const [from, to] of [
        [now - 30 * DAY, now - DAY],
        [now - 2 * DAY, now - DAY],
        [now - 3_600_000, now],
      ]) {
        const text = await plan({ ...filter, from: new Date(from), to: new Date(to) });
        expect({ filter, from, parts: scanned(text) }).toEqual({ filter, from, parts: weeks(from, to) });
        checked++;
      }
      // One bound: the weeks on its side, and DEFAULT (it would hold rows beyond the last partition).
      const since = scanned(await plan({ ...filter, from: new Date(now - 2 * DAY) }));
      expect(since).toEqual(
        [...weeks(now - 2 * DAY, now + 14 * DAY), 'session_audit_log_default'].filter((n) => all.includes(n)).sort(),
      );
      const until = scanned(await plan({ ...filter, to: new Date(now - 80 * DAY) }));
      expect(until.every((n) => n === 'session_audit_log_default' || n <= weekOf(now - 80 * DAY))).toBe(true);
      expect(until).toContain(weekOf(now - 81 * DAY));
      // No bound: no pruning, every partition (each read through its own index, as the test above shows).
      expect(scanned(await plan(filter))).toEqual(all);
      checked += 3;
    }
    expect(checked).toBe(filters.length * 6);
  }, 60_000);

  it('answers each query kind through the service, timings reported (p50 of 20 runs)', async () => {
    const from = new Date(now - 30 * DAY).toISOString();
    const to = new Date(now - DAY).toISOString();
    const kinds: Kind[] = [
      ['no filter (latest events)', {}],
      ['no filter, page 2 (cursor)', {}, true],
      ['by user', { userId: 'user-42' }],
      ['by user (5% of all rows), page 2', { userId: 'user-heavy' }, true],
      ['by session', { sessionId }],
      ['by actor (admin)', { actorId: 'admin-3' }],
      ['by events (common)', { events: ['created', 'revoked'] }],
      ['by event (rare: token_reuse_detected)', { events: ['token_reuse_detected'] }],
      ['by events (rare: token_reuse_detected, revoked_all)', { events: ['token_reuse_detected', 'revoked_all'] }],
      ['by ip', { ip: '10.42.3.1' }],
      ['by ip network (/16, 0.4% of rows)', { ip: '10.42.0.0/16' }],
      ['by IPv6 address (and its /64 flood rows)', { ip: '2001:db8:2a:1::2' }],
      ['by IPv6 network (/48)', { ip: '2001:db8:2a::/48' }],
      ['by time range (29 days)', { from, to }],
      [
        'user + events + time',
        { userId: 'user-42', events: ['created', 'logout'], from: new Date(now - 90 * DAY).toISOString(), to },
      ],
      ['actor + events', { actorId: 'admin-3', events: ['revoked', 'revoked_all'] }],
      ['ip + time', { ip: '10.42.3.1', from, to }],
      [
        'rare event + short window',
        { events: ['token_reuse_detected'], from: new Date(now - 2 * DAY).toISOString(), to },
      ],
    ];
    const report = [
      `${'query kind'.padEnd(52)} ${'p50 service'.padStart(12)} ${'p50 plan'.padStart(10)} ${'p50 in db'.padStart(10)}   rows`,
    ];
    for (const [name, filter, page2] of kinds) {
      const first = page2 ? await audit.query(filter) : undefined;
      const cursor = first?.nextCursor ?? undefined;
      const times: number[] = [];
      let items = 0;
      for (let run = 0; run < 20; run++) {
        const started = performance.now();
        const page = await audit.query({ ...filter, ...(cursor ? { cursor } : {}) });
        times.push(performance.now() - started);
        items = page.items.length;
      }
      // The same statement's execution time inside Postgres, without client and network.
      const asFilter = {
        ...filter,
        from: filter.from && new Date(filter.from),
        to: filter.to && new Date(filter.to),
      } as AuditFilter;
      const position = first ? (await store.query(asFilter, undefined, 50)).at(-1)!.position : undefined;
      const values = auditPageValues(asFilter, position, 51);
      const inDb: number[] = [];
      const planning: number[] = [];
      for (let run = 0; run < 5; run++) {
        const { rows } = await db.pool.query({
          text: `EXPLAIN (ANALYZE, FORMAT JSON) ${AUDIT_SQL.page.text}`,
          values,
        });
        inDb.push(rows[0]['QUERY PLAN'][0]['Execution Time']);
        planning.push(rows[0]['QUERY PLAN'][0]['Planning Time']);
      }
      const p50 = median(times);
      report.push(
        `${name.padEnd(52)} ${p50.toFixed(2).padStart(9)} ms ${median(planning).toFixed(2).padStart(7)} ms ${median(inDb).toFixed(2).padStart(7)} ms   ${items}`,
      );
      // No bound on the time: the plan tests above prove the index use; speed is the machine's.
      expect(items).toBeGreaterThan(0);
    }
    const summaries: Array<[string, { from: string; to: string; bucket: 'minute' | 'hour' | 'day' }]> = [
      [
        'summary: minutes of the last day',
        { from: new Date(now - DAY).toISOString(), to: new Date(now).toISOString(), bucket: 'minute' },
      ],
      [
        'summary: hours of the last 7 days',
        { from: new Date(now - 7 * DAY).toISOString(), to: new Date(now).toISOString(), bucket: 'hour' },
      ],
      [
        'summary: days of all 90 days (whole table)',
        { from: new Date(now - 91 * DAY).toISOString(), to: new Date(now).toISOString(), bucket: 'day' },
      ],
    ];
    for (const [name, input] of summaries) {
      const times: number[] = [];
      for (let run = 0; run < 3; run++) {
        const started = performance.now();
        await audit.summary(input);
        times.push(performance.now() - started);
      }
      report.push(
        `${name.padEnd(52)} ${median(times).toFixed(2).padStart(9)} ms ${'-'.padStart(10)} ${'-'.padStart(10)}   (p50 of 3)`,
      );
    }
    console.log(
      `audit query p50 on ${ROWS.toLocaleString('en')} rows (20 runs each, through SessionAuditService):\n${report.join('\n')}`,
    );
  }, 60_000);
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
