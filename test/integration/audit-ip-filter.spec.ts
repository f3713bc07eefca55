import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import { SessionAuditStore } from '../../src/session/audit/audit.store.js';
import { SessionAuditService } from '../../src/session/audit/session-audit.service.js';
import { sourceOf } from '../../src/session/security/request-source.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * What `ip` holds: host addresses as the framework resolved them (IPv4-mapped included), the
 * sources of aggregated flood rows (IPv4, or an IPv6 /64 as sourceOf writes it), and text
 * that is no address at all (a proxy passes any X-Forwarded-For through, an app's
 * getClientIp() may answer anything).
 */
const STORED = [
  '192.0.2.1',
  '192.0.2.200',
  '::ffff:192.0.2.3',
  '198.51.100.7',
  '2001:db8::1',
  '2001:db8::2',
  sourceOf('2001:db8::abcd'), // '2001:db8:0:0::/64', a flood row of that /64
  sourceOf('2001:db8:0:1::9'), // '2001:db8:0:1::/64'
  '2001:db8:1::5',
  '0.0.0.0/0', // a spoofed header: must not match every filter
  '10.0.0.0/8',
  'unknown',
  'not an address',
  '1.2.3.4; DROP TABLE session_audit_log',
  null,
];

describe('the audit ip filter: an address or a network, against what rows store', () => {
  let db: TestDatabase;
  let audit: SessionAuditService;
  const idOf = new Map<string | null, string>();

  beforeAll(async () => {
    db = await createTestDatabase();
    audit = new SessionAuditService(new SessionAuditStore(db.pool));
    for (const [i, ip] of STORED.entries()) {
      const { rows } = await db.pool.query(
        `INSERT INTO session_audit_log (occurred_at, event, ip) VALUES (timestamptz '2025-03-01 00:00Z' + $1 * interval '1 minute', 'invalid_token', $2)
         RETURNING id::text AS id`,
        [i, ip],
      );
      idOf.set(ip, rows[0].id);
    }
  });
  afterAll(async () => db?.drop());

  const found = async (ip: string, limit = 500): Promise<Array<string | null>> => {
    const stored = new Map([...idOf].map(([k, v]) => [v, k]));
    const ips: Array<string | null> = [];
    let cursor: string | undefined;
    do {
      const page = await audit.query({ ip, limit, ...(cursor ? { cursor } : {}) });
      ips.push(...page.items.map((item) => stored.get(item.id)!));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return ips.reverse(); // oldest first, as STORED lists them
  };

  it.each<[string, Array<string | null>]>([
    ['192.0.2.1', ['192.0.2.1']],
    ['192.0.2.3', ['::ffff:192.0.2.3']],
    ['::ffff:192.0.2.3', ['::ffff:192.0.2.3']],
    ['192.0.2.0/24', ['192.0.2.1', '192.0.2.200', '::ffff:192.0.2.3']],
    ['192.0.2.0/25', ['192.0.2.1', '::ffff:192.0.2.3']],
    ['0.0.0.0/0', ['192.0.2.1', '192.0.2.200', '::ffff:192.0.2.3', '198.51.100.7']],
    ['10.1.2.3', []],
    ['2001:db8::1', ['2001:db8::1', '2001:db8:0:0::/64']],
    ['2001:DB8:0::0001', ['2001:db8::1', '2001:db8:0:0::/64']],
    ['2001:db8::3', ['2001:db8:0:0::/64']],
    ['2001:db8:0:1::1', ['2001:db8:0:1::/64']],
    ['2001:db8::/64', ['2001:db8::1', '2001:db8::2', '2001:db8:0:0::/64']],
    ['2001:db8::/48', ['2001:db8::1', '2001:db8::2', '2001:db8:0:0::/64', '2001:db8:0:1::/64']],
    ['2001:db8::/32', ['2001:db8::1', '2001:db8::2', '2001:db8:0:0::/64', '2001:db8:0:1::/64', '2001:db8:1::5']],
    ['2001:db8::/96', ['2001:db8::1', '2001:db8::2']],
    ['2001:db8::1/128', ['2001:db8::1', '2001:db8:0:0::/64']],
    ['::/0', ['2001:db8::1', '2001:db8::2', '2001:db8:0:0::/64', '2001:db8:0:1::/64', '2001:db8:1::5']],
  ])('ip=%s finds exactly its rows', async (filter, expected) => {
    expect(await found(filter)).toEqual(expected);
  });

  it('pages through a network filter in order, one row per page, with its cursors', async () => {
    expect(await found('2001:db8::/32', 1)).toEqual(await found('2001:db8::/32'));
  });

  it('ties a cursor to the normalised filter: equal spellings share it, another network refuses it', async () => {
    const page = await audit.query({ ip: '2001:db8::/48', limit: 1 });
    const next = await audit.query({ ip: '2001:0DB8:0:0:ffff::/48', limit: 1, cursor: page.nextCursor! });
    expect(next.items).toHaveLength(1);
    const refused = await audit
      .query({ ip: '2001:db8::/47', limit: 1, cursor: page.nextCursor! })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BadRequestException);
  });

  it('refuses what is neither an address nor a network, before any SQL', async () => {
    for (const ip of [
      'unknown',
      '0.0.0.0/33',
      '2001:db8::/129',
      '1.2.3.4; DROP TABLE session_audit_log',
      '10.0.0.1/ 8',
    ]) {
      const error = await audit.query({ ip }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BadRequestException);
      expect(((error as BadRequestException).getResponse() as { message: string[] }).message).toEqual([
        expect.stringMatching(/^ip must be an IPv4 or IPv6 address, or a network in CIDR notation/),
      ]);
    }
    expect((await db.pool.query('SELECT count(*)::int AS n FROM session_audit_log')).rows[0].n).toBe(STORED.length);
  });

  it('reads ip as an address only when it is one: session_audit_inet() never fails a write', async () => {
    const { rows } = await db.pool.query(
      `SELECT x AS stored, session_audit_inet(x)::text AS inet FROM unnest($1::text[]) AS x`,
      [
        [
          '999.1.1.1',
          '1.2.3',
          '::ffff:1.2.3.4',
          '2001:db8::1/64',
          '2001:db8::/64',
          '2001:db8::/63',
          '1::1%eth0',
          ':::',
          '',
        ],
      ],
    );
    expect(Object.fromEntries(rows.map((r) => [r.stored, r.inet]))).toEqual({
      '999.1.1.1': null,
      '1.2.3': null,
      '::ffff:1.2.3.4': '1.2.3.4/32',
      '2001:db8::1/64': null, // a network with host bits: no module writes that
      '2001:db8::/64': '2001:db8::/64',
      '2001:db8::/63': null,
      '1::1%eth0': null,
      ':::': null,
      '': null,
    });
  });
});
